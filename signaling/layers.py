"""The Redis channel layer, made to ride out a Redis restart, and to be cheap.

redis-py 8 gives sockets a 5 s timeout that kills channels-redis's blocking
reads on an idle socket (channels_redis issue 422): reads block with no
timeout here, and commands retry with back-off while Redis comes back.

The wire format and Redis keys are channels-redis's; what differs is the
cost: a send is one script, and one task per process reads its sockets'
messages in batches (docs/benchmarks.md has the figures).
"""

import asyncio
import logging
import time

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

log = logging.getLogger(__name__)

OUTAGE_ERRORS = (ConnectionError, TimeoutError, OSError)
# Connections per process to Redis, and how long a command waits for one.
MAX_CONNECTIONS = 100
CONNECTION_WAIT_SECONDS = 5

# channels-redis's send, as one script: drop expired messages, refuse when the
# channel is full, add, refresh the expiry. One round trip instead of four.
SEND = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
# A process's read: put back what a cancelled read left in the backup (when
# ARGV[2] is 1; else it was delivered), then take up to ARGV[1] messages and
# keep them in the backup until the next read. Pairs of member, score.
POP = """
local backup = KEYS[2]
if ARGV[2] == '1' then
    local left = redis.call('ZRANGE', backup, 0, -1, 'WITHSCORES')
    for i = 1, #left, 2 do
        redis.call('ZADD', KEYS[1], left[i + 1], left[i])
    end
end
redis.call('DEL', backup)
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
for i = 1, #popped, 2 do
    redis.call('ZADD', backup, popped[i + 1], popped[i])
end
if #popped > 0 then
    redis.call('EXPIRE', backup, 60)
end
return popped
"""
READ_BATCH = 100


def host_config(address: str) -> dict:
    """Connection options for a REDIS_URL: redis://, rediss:// or unix://."""
    config = {
        "address": address,
        "socket_timeout": None,
        "socket_connect_timeout": 2,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=8),
        "retry_on_error": [ConnectionError, TimeoutError],
    }
    if not address.startswith("unix:"):
        # TCP only: a unix socket's connection takes no such option.
        config["socket_keepalive"] = True
    return config


class ResilientRedisChannelLayer(RedisChannelLayer):
    def __init__(self, hosts=None, **kwargs):
        hosts = [host_config(h) if isinstance(h, str) else h for h in hosts or []]
        super().__init__(hosts=hosts, **kwargs)
        # This process's channels, from `new_channel` until their receive is
        # cancelled (the socket is gone); messages for others are dropped.
        # Per channel: the messages not yet received, and the future of a
        # receive waiting for one: an idle socket holds one future, where an
        # asyncio.Queue would hold four deques.
        self._live: set[str] = set()
        self._inbox: dict[str, list] = {}
        self._waiters: dict[str, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None
        self._delivered = True  # the last batch read reached its sockets

    def create_pool(self, index):
        """A pool whose commands wait for a free connection.

        redis-py's pool fails a command at once when its connections are all
        busy (MaxConnectionsError), which under a burst of sends ended sockets
        with 1011. Waiting past CONNECTION_WAIT_SECONDS is an outage: the
        sender's patience applies (see `signaling.groups`).
        """
        host = dict(self.hosts[index])
        return BlockingConnectionPool.from_url(
            host.pop("address"),
            max_connections=MAX_CONNECTIONS,
            timeout=CONNECTION_WAIT_SECONDS,
            **host,
        )

    async def send(self, channel, message):
        self.require_valid_channel_name(channel)  # raises TypeError
        if "!" in channel:  # a process-local channel: its process's queue
            message = {**message, "__asgi_channel__": channel}
            key, index = self.non_local_name(channel), self.consistent_hash(channel)
        else:
            key, index = channel, next(self._send_index_generator)
        now, expiry = time.time(), int(self.expiry)
        added = await self.connection(index).eval(
            SEND,
            1,
            self.prefix + key,
            int(now) - expiry,
            self.get_capacity(channel),
            now,
            self.serialize(message),
            expiry,
        )
        if not added:
            raise ChannelFull()

    async def group_add(self, group, channel) -> bool:
        """channels-redis's `group_add`, saying whether the channel was not in it.

        A member that finds itself added again knows that Redis forgot the
        group (it restarted), and with it what was sent to the group meanwhile.
        """
        self.require_valid_group_name(group)  # these raise TypeError
        self.require_valid_channel_name(channel)
        key = self._group_key(group)
        redis = self.connection(self.consistent_hash(group))
        added = await redis.zadd(key, {channel: time.time()})
        await redis.expire(key, self.group_expiry)
        return bool(added)

    async def new_channel(self, prefix="specific"):
        channel = await super().new_channel(prefix)
        self._live.add(channel)
        return channel

    def release(self, channel: str) -> None:
        """Forget a channel that will receive no more (a request's, once it has
        its answer); what still comes for it is dropped. A socket's channel is
        forgotten when its receive is cancelled."""
        self._live.discard(channel)
        self._inbox.pop(channel, None)

    async def receive(self, channel):
        """Wait for a message, through Redis outages of any length.

        A failed read would otherwise end the consumer that made it and close
        its socket with 1011. A socket's channel is served by `_read`.
        """
        if "!" not in channel:
            return await _patiently(super().receive, channel)
        inbox = self._inbox.get(channel)
        if inbox:
            message = inbox.pop(0)
            if not inbox:
                del self._inbox[channel]
            return message
        self._live.add(channel)
        waiter = self._waiters[channel] = asyncio.get_running_loop().create_future()
        reader = self._reader
        if reader is None or reader.done() or reader.cancelling():
            local = self.non_local_name(channel)
            self._reader = asyncio.get_running_loop().create_task(self._read(local))
        try:
            return await waiter
        except asyncio.CancelledError:
            self._live.discard(channel)
            self._inbox.pop(channel, None)
            if len(self._waiters) == 1:  # nobody else waits: stop reading
                self._reader.cancel()
            raise
        finally:
            if self._waiters.get(channel) is waiter:
                del self._waiters[channel]

    async def _read(self, local: str):
        """Move this process's messages from Redis to its sockets, while any waits.

        One task reads for every socket of the process, where channels-redis
        has each waiting socket contend for a lock with two tasks of its own,
        and takes whatever is queued in one round trip, where channels-redis
        spends four per message.
        """
        key = self.prefix + local
        redis = self.connection(self.consistent_hash(local))
        while self._waiters:
            # A reader cancelled while a batch was on its way left it in the
            # backup; else the backup holds what was delivered.
            restore = 0 if self._delivered else 1
            self._delivered = False
            popped = await _patiently(
                redis.eval, POP, 2, key, key + "$inflight", READ_BATCH, restore
            )
            self._delivered = True  # it is, below, with no await in between
            members = popped[::2]
            if not members:  # nothing queued: wait for the next message (a
                # reader cancelled in this wait loses it, as in channels-redis)
                got = await _patiently(redis.bzpopmin, key, self.brpop_timeout)
                members = [got[1]] if got else []
            for member in members:
                message = self.deserialize(member)
                channel = message.pop("__asgi_channel__")
                for name in channel if isinstance(channel, list) else [channel]:
                    self._deliver(name, message)

    def _deliver(self, channel: str, message: dict):
        waiter = self._waiters.pop(channel, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        elif channel in self._live:
            inbox = self._inbox.setdefault(channel, [])
            if len(inbox) >= self.capacity:  # a socket that stopped reading
                log.warning("dropped the oldest message for %s: inbox full", channel)
                del inbox[0]
            inbox.append(message)
        else:
            log.debug("dropped a message for a closed socket: %s", message["type"])


async def _patiently(command, *args):
    delay = 0.05
    while True:
        try:
            return await command(*args)
        except OUTAGE_ERRORS as error:
            log.warning("channel layer receive failed (%s); retrying", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
