"""The production settings with channels_redis's RedisPubSubChannelLayer instead.

Used only to compare the two Redis layers (docs/benchmarks.md); everything
else, including the Redis URL and prefix, stays as in `config.settings`.
"""

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL, env

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            "prefix": env("CHANNEL_PREFIX", "consult"),
        },
    }
}
