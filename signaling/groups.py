"""The one module that knows channel-layer names and event types.

- A `SendFrame` goes to the one channel name the database gave for the other
  party, as a `relay.frame` event that the consumer writes to its socket, with
  the delivery's route flags (`consult.events.SendFrame`); `Released`
  tells a socket that a newer one of the same party took what it held.
- `DesksRevoked` closes every desk socket of a consultant, on every process,
  through the consultant's desk group.
- Queue and presence changes go to the `consult.hub` group, which every server
  process's hub joins; each hub then pushes to its own sockets (see `hub.py`).
- A process leaves its groups when it stops; `ProcessGone` takes a dead one
  out of them (the repair pass), so that no group writes to a dead inbox.
"""

import asyncio
import logging
from collections.abc import Iterable

from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from consult.events import (
    DesksRevoked,
    Event,
    PresenceChanged,
    ProcessGone,
    QueueChanged,
    Released,
    SendFrame,
)

from .layers import OUTAGE_ERRORS

log = logging.getLogger(__name__)

HUB_GROUP = "consult.hub"
RELAY = "relay.frame"
RELEASED = "socket.released"
DESKS_REVOKED = "desks.revoked"
HUB_QUEUE = "hub.queue"
HUB_PRESENCE = "hub.presence"
# How long a send keeps trying through a full channel or a Redis restart.
SEND_PATIENCE_SECONDS = 5.0


def desk_group(consultant_id: int) -> str:
    """The group of one consultant's desk sockets, on every process."""
    return f"consult.desks.{consultant_id}"


def relay_event(send: SendFrame) -> dict:
    """The channel-layer message of a `SendFrame`; flags only when set."""
    event = {"type": RELAY, "frame": send.frame, "call": send.call}
    if send.reply_to:
        event["reply_to"] = send.reply_to
    if send.stale_route:
        event["stale_route"] = True
    if send.ends_call:
        event["ends_call"] = True
    return event


def hub_event(event: QueueChanged | PresenceChanged) -> dict:
    if isinstance(event, QueueChanged):
        return {
            "type": HUB_QUEUE,
            "consultant": event.consultant_id,
            "moved": event.moved,
            "left": event.left,
        }
    return {"type": HUB_PRESENCE, "consultant": event.consultant_id}


class LayerUnavailable(Exception):
    """Redis stayed out of reach for longer than a send's patience."""


async def _with_patience(send, *args) -> None:
    """Send through a full channel or a short Redis restart; give up after a while.

    A channel still full then belongs to an overloaded process: the message is
    dropped and logged. Redis still down raises `LayerUnavailable`.
    """
    delay, waited = 0.02, 0.0
    while True:
        try:
            return await send(*args)
        except (ChannelFull, *OUTAGE_ERRORS) as error:
            if waited >= SEND_PATIENCE_SECONDS:
                log.error("channel-layer send failed after %.1fs: %r", waited, error)
                if isinstance(error, ChannelFull):
                    return None
                raise LayerUnavailable from error
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)


async def leave_groups(channel: str, desks: Iterable[tuple[int, str]]) -> None:
    """Take a process's hub `channel` and its `desks` ((consultant id, channel
    name) pairs) out of their groups."""
    layer = get_channel_layer()
    if channel:
        await _with_patience(layer.group_discard, HUB_GROUP, channel)
    for consultant_id, desk in desks:
        await _with_patience(layer.group_discard, desk_group(consultant_id), desk)


async def publish(events: list[Event]) -> None:
    """Deliver a service's events, once each, in order."""
    layer = get_channel_layer()
    seen = set()
    for event in events:
        if isinstance(event, SendFrame):
            await _with_patience(layer.send, event.channel, relay_event(event))
            continue
        if isinstance(event, Released):
            await _with_patience(layer.send, event.channel, {"type": RELEASED})
            continue
        if isinstance(event, DesksRevoked):
            revoked = {"type": DESKS_REVOKED, "code": event.code}
            group = desk_group(event.consultant_id)
            await _with_patience(layer.group_send, group, revoked)
            continue
        if isinstance(event, ProcessGone):
            await leave_groups(event.channel, event.desks)
            continue
        if event in seen:
            continue
        seen.add(event)
        await _with_patience(layer.group_send, HUB_GROUP, hub_event(event))
