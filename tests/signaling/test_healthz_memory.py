"""Health checks leave nothing behind in the channel layer (issue 19, item 11).

Each GET /healthz makes a channel for its round trip through the layer; once
answered, the layer must have forgotten it, or every probe grows the process
(about 550 bytes a request was measured, docs/benchmarks.md).
"""

import pytest
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator

from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = 50


def channel_table(layer) -> dict[str, int]:
    """The layer's per-channel bookkeeping: what a leak would grow."""
    if hasattr(layer, "_live"):  # signaling.layers.ResilientRedisChannelLayer
        return {
            "live": len(layer._live),
            "inbox": len(layer._inbox),
            "waiters": len(layer._waiters),
        }
    return {"channels": len(layer.channels)}  # the in-memory layer


async def healthz() -> None:
    response = await HttpCommunicator(application, "GET", "/healthz").get_response(
        timeout=10
    )
    assert response["status"] == 200, response


async def test_health_checks_leave_the_layers_channel_table_unchanged():
    layer = get_channel_layer()
    await healthz()  # the process's runtime (its hub channel) starts here
    before = channel_table(layer)

    for _ in range(CHECKS):
        await healthz()

    assert channel_table(layer) == before


async def test_a_released_channel_drops_what_still_comes_for_it():
    layer = get_channel_layer()
    if not hasattr(layer, "release"):
        pytest.skip("only the Redis layer keeps channels live until released")
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "first"})
    assert (await layer.receive(channel))["type"] == "first"

    layer.release(channel)
    await layer.send(channel, {"type": "late"})
    other = await layer.new_channel()
    await layer.send(other, {"type": "after"})
    assert (await layer.receive(other))["type"] == "after"

    layer.release(other)
    assert channel not in layer._live and channel not in layer._inbox
