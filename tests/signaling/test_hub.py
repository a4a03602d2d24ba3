"""Coalesced pushes: the first change goes out at once, a burst becomes one push."""

import asyncio

from signaling.hub import Coalescer


async def test_first_change_is_pushed_at_once_and_a_burst_is_merged_into_one():
    pushes = []

    async def push(key):
        pushes.append((key, asyncio.get_running_loop().time()))

    coalescer = Coalescer(0.2, push)
    start = asyncio.get_running_loop().time()
    coalescer.changed("lobby")
    await asyncio.sleep(0)
    assert len(pushes) == 1 and pushes[0][1] - start < 0.05
    for _ in range(50):
        coalescer.changed("lobby")
    await asyncio.sleep(0.5)
    assert [key for key, _ in pushes] == ["lobby", "lobby"]
    assert pushes[1][1] - pushes[0][1] >= 0.2


async def test_keys_are_coalesced_independently():
    pushes = []

    async def push(key):
        pushes.append(key)

    coalescer = Coalescer(0.2, push)
    coalescer.changed(("queue", 1))
    coalescer.changed(("queue", 2))
    coalescer.changed(("queue", 1))
    await asyncio.sleep(0.5)
    assert sorted(pushes) == [("queue", 1), ("queue", 1), ("queue", 2)]


async def test_a_quiet_window_sends_nothing_more():
    pushes = []

    async def push(key):
        pushes.append(key)

    coalescer = Coalescer(0.1, push)
    coalescer.changed("lobby")
    await asyncio.sleep(0.3)
    assert pushes == ["lobby"]
    assert not coalescer.open
