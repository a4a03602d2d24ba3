"""Writes to the queue: every change of a ticket, a consultation or a presence.

Each service is a short transaction that takes keyword arguments and returns a
`Result`: its answer for the party that asked, plus the events to publish once
the transaction has committed. Parties are identified by their socket's
channel name as the database holds it, never by a name a client sent.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from . import errors
from .events import PresenceChanged, QueueChanged, Released, Result, Route, Tell
from .models import (
    Consultant,
    Consultation,
    DeskSocket,
    Presence,
    ServerProcess,
    Ticket,
)
from .selectors import ticket_position

WAITING = Ticket.State.WAITING
IN_CALL = Ticket.State.IN_CALL
LIVE = [WAITING, IN_CALL]
ACTIVE = Consultation.Outcome.ACTIVE
Outcome = Consultation.Outcome
Party = Consultation.Party

# Browsers gather a handful of candidates; this bounds what a waiting caller
# can make us store.
MAX_CANDIDATES = 64
OFFLINE_REASON = "The consultant went offline."


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _grace() -> timedelta:
    return timedelta(seconds=settings.CONSULT_GRACE_SECONDS)


def _consultant_ref(consultant: Consultant) -> dict:
    return {"slug": consultant.slug, "name": consultant.name}


def _end_ticket(ticket: Ticket, now: datetime) -> None:
    """Take the ticket out of play and erase its signaling; history keeps the rest."""
    Ticket.objects.filter(pk=ticket.pk).update(
        state=Ticket.State.ENDED,
        ended_at=now,
        offer="",
        candidates=[],
        caller_channel="",
        caller_address="",
    )


def _leave_queue(ticket: Ticket, *, outcome: str, by: str, reason: str, now):
    """End a waiting ticket, and keep its history: a request that got no call."""
    _end_ticket(ticket, now)
    Consultation.objects.create(
        consultant_id=ticket.consultant_id,
        ticket=ticket,
        caller_name=ticket.caller_name,
        reason=ticket.reason,
        audio_only=ticket.audio_only,
        requested_at=ticket.created_at,
        ended_at=now,
        ended_by=by,
        end_reason=reason,
        outcome=outcome,
    )


def _refuse(ticket: Ticket, *, by: str, reason: str, now: datetime) -> list[Tell]:
    """Turn a waiting caller away: the history, and the `refused` frame for them."""
    _leave_queue(ticket, outcome=Outcome.REFUSED, by=by, reason=reason, now=now)
    return _tell(ticket.caller_channel, {"type": "refused", "reason": reason})


def _process_timeout() -> timedelta:
    return timedelta(seconds=settings.CONSULT_PROCESS_TIMEOUT_SECONDS)


def _caller_ticket(channel: str, *, lock: bool = False) -> Ticket:
    tickets = Ticket.objects.select_related("consultant")
    if lock:
        tickets = tickets.select_for_update(of=("self",))
    ticket = tickets.filter(caller_channel=channel, state__in=LIVE).first()
    if ticket is None or not channel:
        raise errors.NotQueued
    return ticket


def _calls_of(channel: str, party: str):
    """The active consultation that this socket holds as `party`, as a query."""
    if not channel:
        raise errors.NotInCall
    calls = Consultation.objects.filter(outcome=ACTIVE)
    if party == Party.CALLER:
        return calls.filter(ticket__caller_channel=channel)
    return calls.filter(consultant_channel=channel)


def _call_of(channel: str, party: str, *, lock: bool = False) -> Consultation:
    """The active consultation that this socket holds as `party`."""
    calls = _calls_of(channel, party).select_related("ticket", "consultant")
    if lock:
        calls = calls.select_for_update(of=("self",))
    try:
        return calls.get()  # one at most: a socket holds one call
    except Consultation.DoesNotExist:
        raise errors.NotInCall from None


def _other_channel(call: Consultation, party: str) -> str:
    return (
        call.consultant_channel if party == Party.CALLER else call.ticket.caller_channel
    )


def _tell(channel: str, frame: dict, *, call: int | None = None) -> list[Tell]:
    """A frame for a socket, or nothing while that party is away."""
    return [Tell(channel, frame, call=call)] if channel else []


# --- Callers ------------------------------------------------------------------


@transaction.atomic
def ticket_create(
    *,
    consultant_slug: str,
    caller_name: str,
    reason: str,
    audio_only: bool,
    offer: str,
    channel: str,
    process: str,
    address: str = "",
) -> Result:
    """Queue a caller with the offer the consultant will answer.

    `address` is the client's, when known: it may have only so many tickets
    waiting at once. Two joins racing from one address may both pass; the
    per-address socket cap and the per-socket rate limit bound that.
    """
    if Ticket.objects.filter(caller_channel=channel, state__in=LIVE).exists():
        raise errors.AlreadyQueued
    if address and _waiting_from(address) >= settings.CONSULT_MAX_WAITING_PER_ADDRESS:
        raise errors.QueueFull("Too many callers are waiting from your address.")
    # The lock serialises joins per consultant, so max_queue holds under races.
    consultant = (
        Consultant.objects.select_for_update()
        .filter(slug=consultant_slug, is_active=True)
        .first()
    )
    if consultant is None:
        raise errors.UnknownConsultant
    if consultant.presence == Presence.OFFLINE:
        raise errors.ConsultantUnavailable
    if consultant.tickets.filter(state=WAITING).count() >= consultant.max_queue:
        raise errors.QueueFull
    token = secrets.token_urlsafe(32)
    ticket = Ticket.objects.create(
        consultant=consultant,
        caller_name=caller_name,
        reason=reason,
        audio_only=audio_only,
        offer=offer,
        token_hash=token_hash(token),
        caller_channel=channel,
        caller_process=process,
        caller_address=address,
    )
    position, eta = ticket_position(ticket)
    queued = {"ticket": str(ticket.id), "token": token, "position": position}
    queued["eta_seconds"] = eta
    return Result((ticket, queued), [QueueChanged(consultant.id, moved=False)])


def _waiting_from(address: str) -> int:
    return Ticket.objects.filter(caller_address=address, state=WAITING).count()


def ticket_add_candidate(*, channel: str, candidate: dict) -> Result:
    """Relay a caller's ICE candidate live (valued with the route), or keep it
    while the caller waits (valued None)."""
    ice = {"type": "ice", "candidate": candidate}
    try:
        # In a call, one read and no lock: candidates come in bursts.
        return consultation_relay(channel=channel, party=Party.CALLER, frame=ice)
    except errors.NotInCall:
        return _keep_candidate(channel=channel, ice=ice)


@transaction.atomic
def _keep_candidate(*, channel: str, ice: dict) -> Result:
    ticket = _caller_ticket(channel, lock=True)
    if ticket.state != WAITING:  # accepted since the first read
        return consultation_relay(channel=channel, party=Party.CALLER, frame=ice)
    if len(ticket.candidates) < MAX_CANDIDATES:
        ticket.candidates.append(ice["candidate"])
        ticket.save(update_fields=["candidates"])
    return Result()


@transaction.atomic
def ticket_cancel(*, channel: str) -> Result:
    """The caller leaves the queue of their own accord."""
    ticket = _caller_ticket(channel, lock=True)
    if ticket.state != WAITING:
        raise errors.NotQueued
    now = timezone.now()
    _leave_queue(ticket, outcome=Outcome.CANCELLED, by=Party.CALLER, reason="", now=now)
    return Result(None, [QueueChanged(ticket.consultant_id)])


@transaction.atomic
def ticket_resume(*, token: str, channel: str, process: str) -> Result:
    """Bind a caller's new socket to its ticket: (kind, ticket, payload)."""
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("consultant")
        .filter(token_hash=token_hash(token), state__in=LIVE)
        .first()
    )
    now = timezone.now()
    if ticket is None or (ticket.dropped_at and now - ticket.dropped_at > _grace()):
        raise errors.BadToken
    if ticket.caller_channel == channel:
        kind, payload = _as_resumed(ticket, token)
        return Result((kind, ticket, payload))
    if Ticket.objects.filter(caller_channel=channel, state__in=LIVE).exists():
        raise errors.AlreadyQueued
    # A reload can beat the server to noticing that the old socket is gone:
    # the new socket takes over, and the old one hears that it lost the ticket.
    events = [] if ticket.dropped_at else [Released(ticket.caller_channel)]
    Ticket.objects.filter(pk=ticket.pk).update(
        caller_channel=channel, caller_process=process, dropped_at=None
    )
    kind, payload = _as_resumed(ticket, token)
    if kind == "queued":
        events.append(QueueChanged(ticket.consultant_id, moved=False))
    else:
        back = {"type": "peer", "state": "back"}
        events += _tell(ticket.consultation.consultant_channel, back)
    return Result((kind, ticket, payload), events)


def _as_resumed(ticket: Ticket, token: str) -> tuple[str, dict]:
    """What a resuming caller is told: `queued` while waiting, else `resumed`."""
    if ticket.state == WAITING:
        position, eta = ticket_position(ticket)
        queued = {"ticket": str(ticket.id), "token": token, "position": position}
        queued["eta_seconds"] = eta
        return "queued", queued
    call = ticket.consultation
    consultant = _consultant_ref(ticket.consultant)
    return "resumed", {"consultation": call.id, "consultant": consultant}


@transaction.atomic
def caller_dropped(*, channel: str) -> Result:
    """The caller's socket closed without cancel or hangup: its grace period starts."""
    ticket = (
        Ticket.objects.select_for_update()
        .filter(caller_channel=channel, state__in=LIVE)
        .first()
    )
    if ticket is None or not channel:
        return Result()
    Ticket.objects.filter(pk=ticket.pk).update(
        caller_channel="", dropped_at=timezone.now()
    )
    if ticket.state == WAITING:
        return Result(None, [QueueChanged(ticket.consultant_id, moved=False)])
    call = Consultation.objects.get(ticket=ticket)
    reconnecting = {"type": "peer", "state": "reconnecting"}
    return Result(None, _tell(call.consultant_channel, reconnecting))


# --- Consultants --------------------------------------------------------------


@transaction.atomic
def desk_opened(*, consultant_id: int, channel: str, process: str) -> Result:
    """A desk socket opens: the consultant is online, and takes back a call it left."""
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
    events += _tell(call.ticket.caller_channel, {"type": "peer", "state": "back"})
    return Result(_call_ref(call), events)


@transaction.atomic
def desk_closed(*, consultant_id: int, channel: str) -> Result:
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
    events = _tell(caller_channel, {"type": "peer", "state": "reconnecting"})
    desk = _live_desk(consultant_id, now)
    if desk is None:
        Consultation.objects.filter(pk=call.pk).update(
            consultant_channel="", consultant_dropped_at=now
        )
        return Result(None, events)
    Consultation.objects.filter(pk=call.pk).update(
        consultant_channel=desk.channel_name, consultant_process=desk.process
    )
    resumed = {"type": "resumed", **_call_ref(call)}
    events.append(Tell(desk.channel_name, resumed))
    events += _tell(caller_channel, {"type": "peer", "state": "back"})
    return Result(None, events)


def _live_desk(consultant_id: int, now: datetime) -> DeskSocket | None:
    """The consultant's newest desk on a process that is still alive."""
    timeout = _process_timeout()
    alive = ServerProcess.objects.filter(heartbeat_at__gte=now - timeout)
    return (
        DeskSocket.objects.filter(consultant_id=consultant_id, process__in=alive)
        .order_by("-opened_at")
        .first()
    )


def _call_ref(call: Consultation) -> dict:
    """The `resumed` payload a desk gets for the call it takes back."""
    return {
        "consultation": call.id,
        "caller": {"ticket": str(call.ticket_id), "name": call.caller_name},
    }


def consultant_set_presence(*, consultant_id: int, presence: str) -> Result:
    """The consultant goes online or away."""
    if presence not in (Presence.ONLINE, Presence.AWAY):
        raise ValueError(presence)
    Consultant.objects.filter(pk=consultant_id).update(presence=presence)
    return Result(None, [PresenceChanged(consultant_id)])


def _claim(consultant_id: int, ticket_id: str | None) -> Ticket | None:
    """Move one waiting ticket to in_call; exactly one of several racing desks wins.

    A conditional UPDATE per candidate: PostgreSQL re-checks `state` after a
    concurrent winner commits, SQLite's IMMEDIATE transactions serialise.
    """
    waiting = Ticket.objects.filter(consultant_id=consultant_id, state=WAITING)
    if ticket_id is not None:
        waiting = waiting.filter(pk=ticket_id)
    for pk in waiting.values_list("pk", flat=True)[:10]:
        if Ticket.objects.filter(pk=pk, state=WAITING).update(state=IN_CALL):
            return Ticket.objects.select_related("consultant").get(pk=pk)
    return None


@transaction.atomic
def ticket_accept(
    *, consultant_id: int, channel: str, process: str, ticket_id: str | None = None
) -> Result:
    """Take the next (or a chosen) caller: the `caller` payload, offer included."""
    ticket = _claim(consultant_id, ticket_id)
    if ticket is None:
        raise errors.TicketGone if ticket_id else errors.QueueEmpty
    if Consultation.objects.filter(
        consultant_id=consultant_id, outcome=ACTIVE
    ).exists():
        raise errors.Busy  # and the claim rolls back
    try:
        with transaction.atomic():
            call = Consultation.objects.create(
                consultant_id=consultant_id,
                ticket=ticket,
                caller_name=ticket.caller_name,
                reason=ticket.reason,
                audio_only=ticket.audio_only,
                requested_at=ticket.created_at,
                accepted_at=timezone.now(),
                consultant_channel=channel,
                consultant_process=process,
            )
    except IntegrityError:
        # Another desk of this consultant accepted in the meantime.
        raise errors.Busy from None
    Ticket.objects.filter(pk=ticket.pk).update(offer="", candidates=[])
    caller = {
        "ticket": str(ticket.id),
        "consultation": call.id,
        "name": ticket.caller_name,
        "reason": ticket.reason,
        "audio_only": ticket.audio_only,
        "offer": {"type": "offer", "sdp": ticket.offer},
        "candidates": ticket.candidates,
    }
    return Result(caller, [QueueChanged(consultant_id), PresenceChanged(consultant_id)])


@transaction.atomic
def ticket_refuse(*, consultant_id: int, ticket_id: str, reason: str) -> Result:
    """Turn a waiting caller away with a reason they will read."""
    ticket = (
        Ticket.objects.select_for_update()
        .filter(pk=ticket_id, consultant_id=consultant_id, state=WAITING)
        .first()
    )
    if ticket is None:
        raise errors.TicketGone
    now = timezone.now()
    events = _refuse(ticket, by=Party.CONSULTANT, reason=reason, now=now)
    return Result(None, [*events, QueueChanged(consultant_id)])


@transaction.atomic
def consultation_answer(*, channel: str, answer: dict) -> Result:
    """The consultant's answer: the first is `accepted`, later ones relay.

    The value is the desk's `Route` to the caller.
    """
    call = _call_of(channel, Party.CONSULTANT, lock=True)
    route = Route(call.id, call.ticket.caller_channel)
    if call.connected_at is not None or not route.peer:
        return Result(route, route.tell({"type": "answer", "answer": answer}))
    Consultation.objects.filter(pk=call.pk).update(connected_at=timezone.now())
    accepted = {
        "type": "accepted",
        "consultation": call.id,
        "consultant": _consultant_ref(call.consultant),
        "answer": answer,
    }
    # Both parties learn their route here, before the first candidate.
    return Result(route, [Tell(route.peer, accepted, call=call.id, peer=channel)])


def consultation_relay(*, channel: str, party: str, frame: dict) -> Result:
    """Pass a frame to the other party of this socket's call, and no one else.

    The value is the `Route` taken, for the consumer to reuse.
    """
    peer = "consultant_channel" if party == Party.CALLER else "ticket__caller_channel"
    found = _calls_of(channel, party).values_list("id", peer)[:1]
    if not found:
        raise errors.NotInCall
    route = Route(*found[0])
    return Result(route, route.tell(frame))


def _end_call(call: Consultation, *, outcome: str, by: str, reason: str, now: datetime):
    Consultation.objects.filter(pk=call.pk).update(
        outcome=outcome,
        ended_by=by,
        end_reason=reason,
        ended_at=now,
        consultant_channel="",
    )
    _end_ticket(call.ticket, now)


@transaction.atomic
def consultation_end(*, channel: str, party: str) -> Result:
    """Hang up: the other party hears who ended the call."""
    call = _call_of(channel, party, lock=True)
    other = _other_channel(call, party)
    _end_call(call, outcome=Outcome.COMPLETED, by=party, reason="", now=timezone.now())
    events = _tell(other, {"type": "hangup", "by": party}, call=call.id)
    return Result(call.id, [*events, PresenceChanged(call.consultant_id)])


# --- Liveness: process heartbeats and the grace period ------------------------


def process_heartbeat(*, process: str) -> None:
    ServerProcess.objects.update_or_create(
        pk=process, defaults={"heartbeat_at": timezone.now()}
    )


def process_stopped(*, process: str) -> None:
    """A process that shuts down cleanly hands its sockets to the grace rule at once."""
    ServerProcess.objects.filter(pk=process).update(
        heartbeat_at=timezone.now() - timedelta(days=1)
    )


def sweep(*, now: datetime | None = None) -> Result:
    """End what outlived its grace period; a silent process's sockets count as dropped.

    Safe to run in every process at once: each row moves under a lock that the
    others skip, and only while it is still in the state being swept.
    """
    now = now or timezone.now()
    events = []
    events += _sweep_dead_processes(now)
    events += _sweep_waiting(now - _grace(), now)
    events += _sweep_calls(now - _grace(), now)
    events += _sweep_desks(now - _grace(), now)
    return Result(None, events)


def _sweep_dead_processes(now: datetime) -> list:
    timeout = _process_timeout()
    events = []
    for process in ServerProcess.objects.filter(heartbeat_at__lt=now - timeout):
        with transaction.atomic():
            dead = (
                ServerProcess.objects.select_for_update(skip_locked=True)
                .filter(pk=process.pk, heartbeat_at__lt=now - timeout)
                .first()
            )
            if dead is None:
                continue
            for desk in DeskSocket.objects.filter(process=dead.pk):
                events += desk_closed(
                    consultant_id=desk.consultant_id, channel=desk.channel_name
                ).events
            for channel in (
                Ticket.objects.filter(caller_process=dead.pk, state__in=LIVE)
                .exclude(caller_channel="")
                .values_list("caller_channel", flat=True)
            ):
                events += caller_dropped(channel=channel).events
            dead.delete()
    return events


def _sweep_waiting(cutoff: datetime, now: datetime) -> list:
    events = []
    for ticket in Ticket.objects.filter(state=WAITING, dropped_at__lt=cutoff):
        with transaction.atomic():
            ticket = (
                Ticket.objects.select_for_update(skip_locked=True)
                .filter(pk=ticket.pk, state=WAITING, dropped_at__lt=cutoff)
                .first()
            )
            if ticket is None:
                continue
            _leave_queue(
                ticket,
                outcome=Outcome.ABANDONED,
                by=Party.CALLER,
                reason="disconnected",
                now=now,
            )
            events.append(QueueChanged(ticket.consultant_id))
    return events


def _sweep_calls(cutoff: datetime, now: datetime) -> list:
    events = []
    expired = Consultation.objects.filter(outcome=ACTIVE).filter(
        Q(ticket__dropped_at__lt=cutoff) | Q(consultant_dropped_at__lt=cutoff)
    )
    for pk in expired.values_list("pk", flat=True):
        with transaction.atomic():
            call = (
                Consultation.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("ticket")
                .filter(pk=pk, outcome=ACTIVE)
                .first()
            )
            if call is None:
                continue
            caller_gone = (
                call.ticket.dropped_at is not None and call.ticket.dropped_at < cutoff
            )
            by = Party.CALLER if caller_gone else Party.CONSULTANT
            other = (
                call.consultant_channel if caller_gone else call.ticket.caller_channel
            )
            _end_call(
                call,
                outcome=Outcome.DISCONNECTED,
                by=by,
                reason="disconnected",
                now=now,
            )
            hangup = {"type": "hangup", "by": by, "reason": "disconnected"}
            events += _tell(other, hangup, call=call.id)
            events.append(PresenceChanged(call.consultant_id))
    return events


def _sweep_desks(cutoff: datetime, now: datetime) -> list:
    """Consultants deskless past the grace go offline; their callers are told."""
    events = []
    has_desk = Exists(DeskSocket.objects.filter(consultant=OuterRef("pk")))
    deskless = Consultant.objects.exclude(presence=Presence.OFFLINE).filter(~has_desk)
    # A consultant left online by a vanished process starts its grace now.
    deskless.filter(desk_dropped_at__isnull=True).update(desk_dropped_at=now)
    for pk in deskless.filter(desk_dropped_at__lt=cutoff).values_list("pk", flat=True):
        with transaction.atomic():
            consultant = (
                Consultant.objects.select_for_update(skip_locked=True)
                .filter(~has_desk, pk=pk, desk_dropped_at__lt=cutoff)
                .exclude(presence=Presence.OFFLINE)
                .first()
            )
            if consultant is None:
                continue
            Consultant.objects.filter(pk=pk).update(presence=Presence.OFFLINE)
            for ticket in Ticket.objects.select_for_update().filter(
                consultant_id=pk, state=WAITING
            ):
                events += _refuse(
                    ticket, by=Party.SYSTEM, reason=OFFLINE_REASON, now=now
                )
            events += [PresenceChanged(pk), QueueChanged(pk)]
    return events
