"""A dead process leaves the channel-layer groups (issue 19, item 12).

The repair pass names what a dead process must leave (`ProcessGone`) and
publishing it takes those members out. Then real `daphne` processes on
PostgreSQL and Redis: the members of the hub group and of a consultant's desk
group are read from Redis itself (channels-redis keeps a group as a sorted
set), after a `kill -9` and the others' repair pass, and after a clean stop.
"""

import asyncio
import os
import time
from datetime import timedelta

import pytest
import redis
from channels.db import database_sync_to_async as sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from consult import services
from consult.events import ProcessGone
from consult.models import ServerProcess
from signaling.groups import HUB_GROUP, desk_group, publish
from tests.factories import PASSWORD, make_consultant
from tests.signaling.live import Peer, login, running_servers

pytestmark = pytest.mark.django_db(transaction=True)

# running_servers' timings: a 2 s process timeout, a sweep every 0.5 s.
SWEPT_WITHIN = 15


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def members(server, group: str) -> set[str]:
    """The channels in `group`, as Redis holds them for these servers."""
    key = f"{server.env['CHANNEL_PREFIX']}:group:{group}"
    with redis.Redis.from_url(redis_url()) as client:
        return {member.decode() for member in client.zrange(key, 0, -1)}


def process_channels() -> dict[str, str]:
    return dict(ServerProcess.objects.values_list("id", "channel"))


async def eventually(check, within: float = SWEPT_WITHIN):
    """`check()` (sync, may read the database) once it is true, or at the end."""
    deadline = time.monotonic() + within
    while True:
        result = await sync_to_async(check)()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.2)


async def open_desk(server) -> Peer:
    cookie = await sync_to_async(login)(server, "ada", PASSWORD)
    desk = await Peer.open(server, "/ws/desk/", cookie)
    await desk.expect("hello")
    return desk


@pytest.fixture
def ada(transactional_db):
    return make_consultant("ada", presence="offline")


def test_the_sweep_names_the_channels_a_dead_process_must_take_out(ada, settings):
    settings.CONSULT_PROCESS_TIMEOUT_SECONDS = 10
    services.process_heartbeat(process="p1", channel="specific.p1!hub")
    services.desk_opened(consultant_id=ada.id, channel="specific.p1!d", process="p1")
    later = timezone.now() + timedelta(seconds=11)

    swept = services.sweep(now=later).events

    assert ProcessGone("specific.p1!hub", ((ada.id, "specific.p1!d"),)) in swept
    # Its tombstone's later passes have nothing more to take out.
    again = services.sweep(now=later).events
    assert not [event for event in again if isinstance(event, ProcessGone)]


async def layer_members(group: str) -> set[str]:
    layer = get_channel_layer()
    if hasattr(layer, "groups"):  # the in-memory layer
        return set(layer.groups.get(group, ()))
    key = layer._group_key(group)
    return {m.decode() for m in await layer.connection(0).zrange(key, 0, -1)}


async def test_publishing_process_gone_takes_its_members_out_of_their_groups():
    layer = get_channel_layer()
    dead_hub, live_hub = await layer.new_channel(), await layer.new_channel()
    dead_desk, live_desk = await layer.new_channel(), await layer.new_channel()
    for channel in (dead_hub, live_hub):
        await layer.group_add(HUB_GROUP, channel)
    for channel in (dead_desk, live_desk):
        await layer.group_add(desk_group(7), channel)

    await publish([ProcessGone(dead_hub, ((7, dead_desk),))])

    assert await layer_members(HUB_GROUP) == {live_hub}
    assert await layer_members(desk_group(7)) == {live_desk}


@pytest.mark.processes
async def test_a_killed_process_is_taken_out_of_its_groups_by_the_sweep(ada, tmp_path):
    with running_servers(2, tmp_path, redis_url()) as (survivor, victim):
        desk = await open_desk(victim)
        channels = await sync_to_async(process_channels)()
        assert len(channels) == 2 and all(channels.values())
        assert members(survivor, HUB_GROUP) == set(channels.values())
        assert len(members(victim, desk_group(ada.id))) == 1

        victim.kill()
        await desk.ws.close()

        def swept() -> list[str]:
            rows = ServerProcess.objects.filter(swept_at__isnull=False)
            return list(rows.values_list("channel", flat=True))

        dead = await eventually(swept)
        assert len(dead) == 1, "the surviving process never swept the killed one"
        alive = set(channels.values()) - set(dead)
        assert await eventually(lambda: members(survivor, HUB_GROUP) == alive), members(
            survivor, HUB_GROUP
        )
        assert members(survivor, desk_group(ada.id)) == set()


@pytest.mark.processes
async def test_a_process_that_stops_cleanly_leaves_its_groups_at_once(ada, tmp_path):
    with running_servers(1, tmp_path, redis_url()) as (server,):
        desk = await open_desk(server)
        channels = await sync_to_async(process_channels)()
        assert members(server, HUB_GROUP) == set(channels.values())
        assert len(members(server, desk_group(ada.id))) == 1

        server.stop()

        # No other process runs a repair pass: it left by itself.
        assert not server.running
        assert members(server, HUB_GROUP) == set()
        assert members(server, desk_group(ada.id)) == set()
        await desk.ws.close()
