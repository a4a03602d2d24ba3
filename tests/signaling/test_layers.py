"""The channel layer keeps channels-redis's rules with its one-script send and
its one reader per process: order, capacity, expiry, closed sockets; on the
real Redis of the test run."""

import asyncio
import time

import pytest
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from signaling.layers import MAX_CONNECTIONS, ResilientRedisChannelLayer

TIMEOUT = 5


@pytest.fixture
async def layer():
    layer = get_channel_layer()
    assert isinstance(layer, ResilientRedisChannelLayer)
    return layer


async def test_messages_to_a_socket_arrive_in_order(layer):
    channel = await layer.new_channel()
    for n in range(20):
        await layer.send(channel, {"type": "relay.frame", "n": n})
    received = [(await layer.receive(channel))["n"] for _ in range(20)]
    assert received == list(range(20))


async def test_a_full_process_queue_refuses_and_keeps_what_it_holds(layer):
    channel = await layer.new_channel()
    key = layer.prefix + layer.non_local_name(channel)
    capacity = layer.get_capacity(channel)
    redis = layer.connection(layer.consistent_hash(channel))
    # Fill the process's queue directly: `capacity` sends would take long.
    fillers = {f"filler-{n}".encode(): time.time() for n in range(capacity)}
    await redis.zadd(key, fillers)
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "relay.frame"})
    assert await redis.zcard(key) == capacity


async def test_send_drops_expired_messages_and_sets_the_expiry(layer):
    channel = await layer.new_channel()
    key = layer.prefix + layer.non_local_name(channel)
    redis = layer.connection(layer.consistent_hash(channel))
    stale = time.time() - layer.expiry - 5
    await redis.zadd(key, {b"stale": stale})
    await layer.send(channel, {"type": "relay.frame", "fresh": True})
    assert await redis.zcard(key) == 1
    assert 0 < await redis.ttl(key) <= layer.expiry
    assert (await layer.receive(channel))["fresh"] is True


async def test_a_general_channel_works_too(layer):
    await layer.send("consult-test.general", {"type": "relay.frame", "n": 1})
    assert (await layer.receive("consult-test.general"))["n"] == 1


async def test_messages_for_a_closed_socket_are_dropped_not_kept(layer):
    gone, alive = await layer.new_channel(), await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(gone))
    await asyncio.sleep(0.05)
    waiting.cancel()  # what Channels does when a socket closes
    listening = asyncio.create_task(layer.receive(alive))
    await layer.send(gone, {"type": "relay.frame", "n": 1})
    await layer.send(alive, {"type": "relay.frame", "n": 2})
    assert (await asyncio.wait_for(listening, TIMEOUT))["n"] == 2
    assert gone not in layer._inbox


async def test_messages_wait_for_a_socket_that_is_busy(layer):
    channel, other = await layer.new_channel(), await layer.new_channel()
    listening = asyncio.create_task(layer.receive(other))  # keeps the reader on
    for n in range(3):
        await layer.send(channel, {"type": "relay.frame", "n": n})
    await layer.send(other, {"type": "relay.frame"})
    await asyncio.wait_for(listening, TIMEOUT)
    assert [(await layer.receive(channel))["n"] for _ in range(3)] == [0, 1, 2]


async def test_what_a_cancelled_read_left_in_the_backup_is_delivered(layer):
    channel = await layer.new_channel()
    key = layer.prefix + layer.non_local_name(channel)
    redis = layer.connection(layer.consistent_hash(channel))
    message = {"type": "relay.frame", "n": 7, "__asgi_channel__": channel}
    # As a reader leaves a batch when it is cancelled before the batch arrives.
    await redis.zadd(key + "$inflight", {layer.serialize(message): time.time()})
    layer._delivered = False
    got = await asyncio.wait_for(layer.receive(channel), TIMEOUT)
    assert got == {"type": "relay.frame", "n": 7}
    # Delivered once: the next read does not put it back.
    other = await layer.new_channel()
    await layer.send(other, {"type": "relay.frame", "n": 8})
    assert (await asyncio.wait_for(layer.receive(other), TIMEOUT))["n"] == 8
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.5)


async def test_a_backlog_is_read_in_batches_in_order_per_socket(layer):
    channels = [await layer.new_channel() for _ in range(5)]
    for n in range(40):
        await layer.send(channels[n % 5], {"type": "relay.frame", "n": n})
    for i, channel in enumerate(channels):
        got = [(await layer.receive(channel))["n"] for _ in range(8)]
        assert got == list(range(i, 40, 5))


async def test_group_add_says_whether_redis_had_forgotten_the_member(layer):
    channel = await layer.new_channel()
    assert await layer.group_add("consult.test", channel) is True
    assert await layer.group_add("consult.test", channel) is False
    await layer.flush()  # as a Redis restart without persistence
    assert await layer.group_add("consult.test", channel) is True


async def test_a_burst_of_sends_waits_for_connections_instead_of_failing(layer):
    channel = await layer.new_channel()
    burst = 3 * MAX_CONNECTIONS
    await asyncio.gather(
        *(layer.send(channel, {"type": "relay.frame", "n": n}) for n in range(burst))
    )
    got = {(await layer.receive(channel))["n"] for _ in range(burst)}
    assert got == set(range(burst))
