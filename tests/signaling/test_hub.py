"""Coalesced pushes: the first change goes out at once, a burst becomes one push."""

import asyncio

from signaling.hub import Coalescer, Hub


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
    await asyncio.sleep(0)
    coalescer.changed(("queue", 1))
    await asyncio.sleep(0.5)
    assert sorted(pushes) == [("queue", 1), ("queue", 1), ("queue", 2)]


async def test_changes_reported_before_the_push_reads_are_in_that_push():
    # An accept reports the queue and the presence of one consultant at once:
    # one read covers both, with no second push a window later.
    pushes = []

    async def push(key):
        pushes.append(key)

    coalescer = Coalescer(0.1, push)
    coalescer.changed(("queue", 1))
    coalescer.changed(("queue", 1))
    await asyncio.sleep(0.3)
    assert pushes == [("queue", 1)]


async def test_a_quiet_window_sends_nothing_more():
    pushes = []

    async def push(key):
        pushes.append(key)

    coalescer = Coalescer(0.1, push)
    coalescer.changed("lobby")
    await asyncio.sleep(0.3)
    assert pushes == ["lobby"]
    assert not coalescer.open


async def test_the_caller_of_a_ticket_that_left_the_queue_is_no_longer_told_positions():
    # An accept reports the ticket that left: with no one else waiting on this
    # process, the positions push that follows has nobody to read for.
    hub = Hub()
    pushes = []

    async def push(key):
        pushes.append(key)

    hub.coalescer = Coalescer(0.05, push)  # no database: what is due is enough
    accepted, behind = object(), object()
    hub.watch_ticket(accepted, 7, "t1", 1, (None, None), "")
    hub.watch_ticket(behind, 7, "t2", 2, (None, None), "")
    hub.queue_changed(7, left="t1")
    assert hub.waiting[7] == {behind: "t2"}
    assert accepted not in hub.sent_position
    hub.queue_changed(7, left="t2")
    assert hub.waiting[7] == {}
    await asyncio.sleep(0.2)
    assert ("positions", 7) in pushes
