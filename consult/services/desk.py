"""A consultant's desk sockets and presence: open, close, online or away."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from consult import errors
from consult.events import (
    DesksRevoked,
    Event,
    PresenceChanged,
    QueueChanged,
    Released,
    Result,
)
from consult.models import (
    Consultant,
    Consultation,
    DeskSocket,
    Presence,
    ServerProcess,
    Ticket,
)

from .shared import (
    ACTIVE,
    OFFLINE_REASON,
    WAITING,
    DeskCallPayload,
    Outcome,
    Party,
    desk_call_payload,
    end_call,
    hangup,
    peer_state,
    process_timeout,
    refuse,
    send,
)

LEFT_REASON = "left"


@transaction.atomic
def desk_opened(
    *, consultant_id: int, channel: str, process: str
) -> Result[DeskCallPayload | None]:
    """A desk socket opens: the consultant is online, and the new desk takes the
    active call (valued with the `resumed` payload then, else None).

    The call moves at once, whether its desk dropped or still looks open: an
    old socket that went silent (a network cut on the client side) would hold
    it until its keep-alive times out. That old socket hears `Released`.
    """
    DeskSocket.objects.create(
        consultant_id=consultant_id, channel_name=channel, process=process
    )
    Consultant.objects.filter(pk=consultant_id).update(
        presence=Presence.ONLINE, desk_dropped_at=None
    )
    events: list[Event] = [PresenceChanged(consultant_id)]
    call = (
        Consultation.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(consultant_id=consultant_id, outcome=ACTIVE)
        .first()
    )
    if call is None:
        return Result(None, events)
    if call.consultant_channel:
        events.append(Released(call.consultant_channel))
    Consultation.objects.filter(pk=call.pk).update(
        consultant_channel=channel,
        consultant_process=process,
        consultant_dropped_at=None,
    )
    events += peer_state(call.ticket.caller_channel, "back")
    return Result(desk_call_payload(call), events)


@transaction.atomic
def desk_closed(
    *, consultant_id: int, channel: str, at: datetime | None = None
) -> Result[None]:
    """A desk socket closed (`at`, by default now): its call moves to another open
    desk, or waits for one through the grace period."""
    now = at or timezone.now()
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
    """The consultant goes online or away; `ValueError` for any other presence.
    Only a consultant with a desk open (not offline) changes: going away or
    online is a desk's state, and an offline consultant set away would take
    callers with no desk to serve them. Raises `ConsultantUnavailable` then."""
    if presence not in (Presence.ONLINE, Presence.AWAY):
        raise ValueError(presence)
    changed = (
        Consultant.objects.filter(pk=consultant_id)
        .exclude(presence=Presence.OFFLINE)
        .update(presence=presence)
    )
    if not changed:
        raise errors.ConsultantUnavailable
    return Result(None, [PresenceChanged(consultant_id)])


def consultant_set_queue_message(*, consultant_id: int, text: str) -> Result[int]:
    """Word from the consultant to everyone waiting in their queue, and to those
    who join later, until replaced; "" clears it. Answers how many wait now.

    `text` is checked by the caller (signaling.messages: at most
    `QUEUE_MESSAGE_MAX` characters, shown as text, never HTML).
    """
    Consultant.objects.filter(pk=consultant_id).update(queue_message=text)
    waiting = Ticket.objects.filter(
        consultant_id=consultant_id, state=Ticket.State.WAITING
    ).count()
    # A queue change, so that each process's hub re-reads the queue's state,
    # which includes the message, for the callers it holds.
    return Result(waiting, [QueueChanged(consultant_id)])


@transaction.atomic
def consultant_leave(*, consultant_id: int, code: int) -> Result[None]:
    """The consultant leaves for good (logout, deactivation, a new password): no
    grace. Every desk socket closes with `code`, the consultant is offline at
    once, an active call ends (the caller hears `hangup` by the consultant),
    and waiting callers are refused now rather than after the grace period."""
    now = timezone.now()
    DeskSocket.objects.filter(consultant_id=consultant_id).delete()
    Consultant.objects.filter(pk=consultant_id).update(
        presence=Presence.OFFLINE, desk_dropped_at=None
    )
    events: list[Event] = [DesksRevoked(consultant_id, code)]
    call = (
        Consultation.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(consultant_id=consultant_id, outcome=ACTIVE)
        .first()
    )
    if call is not None:
        by = Party.CONSULTANT
        end_call(call, outcome=Outcome.COMPLETED, by=by, reason=LEFT_REASON, now=now)
        events += hangup(call.ticket.caller_channel, call.id, by, reason=LEFT_REASON)
    for ticket in Ticket.objects.select_for_update().filter(
        consultant_id=consultant_id, state=WAITING
    ):
        events += refuse(ticket, by=Party.SYSTEM, reason=OFFLINE_REASON, now=now)
    return Result(
        None, [*events, PresenceChanged(consultant_id), QueueChanged(consultant_id)]
    )
