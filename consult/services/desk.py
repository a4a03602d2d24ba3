"""A consultant's desk sockets and presence: open, close, online or away."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from consult.events import PresenceChanged, Result
from consult.models import Consultant, Consultation, DeskSocket, Presence, ServerProcess

from .shared import (
    ACTIVE,
    DeskCallPayload,
    desk_call_payload,
    peer_state,
    process_timeout,
    send,
)


@transaction.atomic
def desk_opened(
    *, consultant_id: int, channel: str, process: str
) -> Result[DeskCallPayload | None]:
    """A desk socket opens: the consultant is online, and takes back a call it left
    (valued with the `resumed` payload then, else None)."""
    DeskSocket.objects.create(
        consultant_id=consultant_id, channel_name=channel, process=process
    )
    Consultant.objects.filter(pk=consultant_id).update(
        presence=Presence.ONLINE, desk_dropped_at=None
    )
    events = [PresenceChanged(consultant_id)]
    call = (
        Consultation.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(consultant_id=consultant_id, outcome=ACTIVE, consultant_channel="")
        .first()
    )
    if call is None:
        return Result(None, events)
    Consultation.objects.filter(pk=call.pk).update(
        consultant_channel=channel,
        consultant_process=process,
        consultant_dropped_at=None,
    )
    events += peer_state(call.ticket.caller_channel, "back")
    return Result(desk_call_payload(call), events)


@transaction.atomic
def desk_closed(*, consultant_id: int, channel: str) -> Result[None]:
    """A desk socket closed: its call moves to another open desk, or waits for one."""
    now = timezone.now()
    DeskSocket.objects.filter(channel_name=channel).delete()
    if not DeskSocket.objects.filter(consultant_id=consultant_id).exists():
        Consultant.objects.filter(pk=consultant_id).update(desk_dropped_at=now)
    call = (
        Consultation.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(consultant_channel=channel, outcome=ACTIVE)
        .first()
    )
    if call is None or not channel:
        return Result()
    caller_channel = call.ticket.caller_channel
    events = peer_state(caller_channel, "reconnecting")
    desk = _live_desk(consultant_id, now)
    if desk is None:
        Consultation.objects.filter(pk=call.pk).update(
            consultant_channel="", consultant_dropped_at=now
        )
        return Result(None, events)
    Consultation.objects.filter(pk=call.pk).update(
        consultant_channel=desk.channel_name, consultant_process=desk.process
    )
    resumed = {"type": "resumed", **desk_call_payload(call)}
    events += send(desk.channel_name, resumed, stale_route=True)
    events += peer_state(caller_channel, "back")
    return Result(None, events)


def _live_desk(consultant_id: int, now: datetime) -> DeskSocket | None:
    """The consultant's newest desk on a process that is still alive."""
    alive = ServerProcess.objects.filter(heartbeat_at__gte=now - process_timeout())
    return (
        DeskSocket.objects.filter(consultant_id=consultant_id, process__in=alive)
        .order_by("-opened_at")
        .first()
    )


def consultant_set_presence(*, consultant_id: int, presence: str) -> Result[None]:
    """The consultant goes online or away; `ValueError` for any other presence."""
    if presence not in (Presence.ONLINE, Presence.AWAY):
        raise ValueError(presence)
    Consultant.objects.filter(pk=consultant_id).update(presence=presence)
    return Result(None, [PresenceChanged(consultant_id)])
