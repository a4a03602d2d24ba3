"""The Redis channel layer, made to ride out a Redis restart, and to send cheaply.

redis-py 8 gives sockets a 5 s timeout that kills channels-redis's blocking
reads on an idle socket (channels_redis issue 422): reads block with no
timeout here, and commands retry with back-off while Redis comes back.
"""

import asyncio
import logging
import time

from channels.exceptions import ChannelFull
from channels_redis.core import RedisChannelLayer
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

log = logging.getLogger(__name__)

OUTAGE_ERRORS = (ConnectionError, TimeoutError, OSError)

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


def host_config(address: str) -> dict:
    return {
        "address": address,
        "socket_timeout": None,
        "socket_connect_timeout": 2,
        "socket_keepalive": True,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=8),
        "retry_on_error": [ConnectionError, TimeoutError],
    }


class ResilientRedisChannelLayer(RedisChannelLayer):
    def __init__(self, hosts=None, **kwargs):
        hosts = [host_config(h) if isinstance(h, str) else h for h in hosts or []]
        super().__init__(hosts=hosts, **kwargs)

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

    async def receive(self, channel):
        """Wait for a message, through Redis outages of any length.

        A failed read would otherwise end the consumer that made it and close
        its socket with 1011.
        """
        delay = 0.05
        while True:
            try:
                return await super().receive(channel)
            except OUTAGE_ERRORS as error:
                log.warning("channel layer receive failed (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
