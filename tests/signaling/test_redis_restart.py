"""A call between two server processes rides out Redis going away and coming back.

The channel layer runs on a private `redis-server` that the test kills (no
persistence: everything Redis held is lost, group memberships included) and
starts again on the same port.
"""

import asyncio

import pytest

from tests.live import started_redis
from tests.signaling.live import (
    CANDIDATE,
    END_OF_CANDIDATES,
    Peer,
    running_servers,
    set_up_call,
)

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

PRIVATE_PORTS = range(6390, 6400)
OUTAGE_SECONDS = 1.5
# redis-py's default socket timeout that used to kill idle blocking reads
# (channels_redis issue 422); an idle socket must outlive it.
OLD_SOCKET_TIMEOUT = 5


@pytest.fixture
def redis(tmp_path):
    with started_redis(tmp_path, PRIVATE_PORTS) as server:
        yield server


@pytest.fixture
def servers(transactional_db, redis, tmp_path):
    with running_servers(2, tmp_path, redis.url) as started:
        yield started


async def relay_both_ways(caller, desk, candidate=CANDIDATE):
    await caller.send("ice", candidate=candidate)
    assert (await desk.expect("ice"))["candidate"] == candidate
    await desk.send("ice", candidate=candidate)
    assert (await caller.expect("ice"))["candidate"] == candidate


async def test_call_relay_works_after_redis_restart(servers, redis):
    a, b = servers
    caller, desk = await set_up_call(caller_server=a, desk_server=b)

    redis.kill()
    # Sent while Redis is down: held back and delivered once it is up again.
    await asyncio.sleep(0.2)
    send_during_outage = asyncio.create_task(
        caller.send("ice", candidate=END_OF_CANDIDATES)
    )
    await asyncio.sleep(OUTAGE_SECONDS)
    redis.start()
    await send_during_outage
    assert (await desk.expect("ice"))["candidate"] == END_OF_CANDIDATES

    await relay_both_ways(caller, desk)
    restart = {"type": "offer", "sdp": "v=0\r\n"}
    await desk.send("offer", offer=restart)
    assert (await caller.expect("offer"))["offer"] == restart

    # Queue pushes cross processes through the hub group, which the restarted
    # Redis forgot: each process must have joined it again.
    late = await Peer.open(a, "/ws/call/")
    await late.expect("hello")
    await late.send(
        "join", consultant="ada", name="Late", offer={"type": "offer", "sdp": "v=0\r\n"}
    )
    queued = await late.expect("queued")
    queue = await desk.push("queue", lambda frame: frame["callers"])
    assert [c["ticket"] for c in queue["callers"]] == [queued["ticket"]]

    await caller.send("hangup")
    assert await desk.expect("hangup") == {"type": "hangup", "by": "caller"}
    for peer in (caller, desk, late):
        await peer.close()


async def test_idle_call_outlives_the_old_redis_socket_timeout(servers):
    a, b = servers
    caller, desk = await set_up_call(caller_server=a, desk_server=b)
    await asyncio.sleep(OLD_SOCKET_TIMEOUT + 2)

    for peer in (caller, desk):
        await peer.send("ping")
        assert await peer.expect("pong") == {"type": "pong"}
    await relay_both_ways(caller, desk)
    for peer in (caller, desk):
        await peer.close()
