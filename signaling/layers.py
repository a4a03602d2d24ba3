"""The Redis channel layer, made to ride out a Redis restart.

redis-py 8 gives sockets a 5 s timeout that kills channels-redis's blocking
reads on an idle socket (channels_redis issue 422): reads block with no
timeout here, and commands retry with back-off while Redis comes back.
"""

import asyncio
import logging

from channels_redis.core import RedisChannelLayer
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

log = logging.getLogger(__name__)

OUTAGE_ERRORS = (ConnectionError, TimeoutError, OSError)


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
