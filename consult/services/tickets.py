"""A caller's ticket: join, candidates while waiting, cancel, resume, drop, refusal.

Also the join limits that are the database's to keep (the waiting cap per
address, proof of work for a queue under pressure, quick cancels without
history) and the liveness check of long waiters, whose asking and expiry the
repair pass runs (`still_there_*`; docs/protocol.md, 4.4 and 4.5).
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypedDict

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import Counter

from consult import errors, proofofwork
from consult.events import PresenceChanged, QueueChanged, Released, Result, Route
from consult.models import Consultant, Consultation, Presence, Ticket
from consult.observability import REGISTRY

from .calls import consultation_relay
from .shared import (
    LIVE,
    WAITING,
    ConsultantRef,
    Outcome,
    Party,
    QueuedPayload,
    caller_ticket,
    consultant_ref,
    end_ticket,
    grace,
    leave_queue,
    peer_state,
    queued_payload,
    refuse,
    send,
    token_hash,
)

# Browsers gather a handful of candidates; this bounds what a waiting caller
# can make us store.
MAX_CANDIDATES = 64
# The first key of the PostgreSQL advisory lock that serialises joins from
# one client address (the second is a hash of the address).
ADDRESS_LOCK = 0x6A6F696E  # "join"
QUICK_CANCELS = Counter(
    "consult_quick_cancels",
    "Tickets cancelled within CONSULT_QUICK_CANCEL_SECONDS of joining; they "
    "leave no history row.",
    registry=REGISTRY,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Joined:
    """A new ticket and the `queued` frame for its caller."""

    ticket: Ticket
    queued: QueuedPayload


class CallerCallPayload(TypedDict):
    """The `resumed` frame's fields for a caller back in its call."""

    consultation: int
    consultant: ConsultantRef


@dataclass(frozen=True)
class Resumption:
    """What a resuming socket is told: `queued` while waiting, else `resumed`."""

    kind: Literal["queued", "resumed"]
    ticket: Ticket
    payload: QueuedPayload | CallerCallPayload
    # While a still-there question waits for its answer: the seconds left.
    answer_within: int | None = None


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
    proof: str = "",
    connectivity: str = "",
    language: str = "",
) -> Result[Joined]:
    """Queue a caller with the offer (SDP text) the consultant will answer.

    `connectivity` is the pre-call check's class (`Connectivity`: "direct",
    "relay", "blocked", or "" when unknown), shown on the desk's queue card.
    `language` is the caller's page language (settings.LANGUAGES), for what
    is written to them later (the recording consent text, the e-mail).

    `address` is the client's, when known: it may have only
    `CONSULT_MAX_WAITING_PER_ADDRESS` tickets waiting at once, checked and
    inserted as one step (`_lock_join`), however many processes race.
    A queue under pressure (`under_pressure`) takes a join only with `proof`,
    a solved ALTCHA challenge (consult.proofofwork). Raises `AlreadyQueued`,
    `TooManyFromAddress`, `UnknownConsultant`, `ConsultantUnavailable`,
    `QueueFull`, `ChallengeRequired` or `ChallengeFailed` (both carrying a
    new challenge).
    """
    _lock_join(address=address, consultant_slug=consultant_slug)
    consultant = _join_target(
        consultant_slug=consultant_slug, channel=channel, address=address
    )
    if consultant.already_queued:
        raise errors.AlreadyQueued
    if address and consultant.from_address >= settings.CONSULT_MAX_WAITING_PER_ADDRESS:
        raise errors.TooManyFromAddress
    if consultant.pk is None:
        raise errors.UnknownConsultant
    if consultant.presence == Presence.OFFLINE:
        raise errors.ConsultantUnavailable
    if consultant.waiting >= consultant.max_queue:
        raise errors.QueueFull
    # Pressure needs half the places held by a few addresses (`under_pressure`):
    # a shorter queue cannot be under it, and is spared the grouped count.
    share = settings.CONSULT_PRESSURE_SHARE * consultant.max_queue
    if consultant.waiting >= share and under_pressure(consultant):
        if not proof:
            raise errors.ChallengeRequired(challenge=proofofwork.challenge())
        if not proofofwork.redeem(proof):
            raise errors.ChallengeFailed(challenge=proofofwork.challenge())
    token = secrets.token_urlsafe(32)
    ticket = Ticket.objects.create(
        consultant=consultant,
        caller_name=caller_name,
        reason=reason,
        audio_only=audio_only,
        connectivity=connectivity,
        language=language,
        offer=offer,
        token_hash=token_hash(token),
        caller_channel=channel,
        caller_process=process,
        caller_address=address,
    )
    # The new ticket is the last: its `created_at` is now.
    queued = queued_payload(ticket, token, ahead=consultant.waiting)
    return Result(Joined(ticket, queued), [QueueChanged(consultant.id, moved=False)])


# PostgreSQL: lock the consultant's row, as `shared.serving_consultant` does,
# and with an address also take the advisory lock of that address.
LOCK_CONSULTANT = "(SELECT id FROM consult_consultant WHERE slug = %s FOR UPDATE)"
LOCK_JOIN = "SELECT " + LOCK_CONSULTANT
LOCK_JOIN_FROM_ADDRESS = "SELECT pg_advisory_xact_lock(%s, %s), " + LOCK_CONSULTANT


def _lock_join(*, address: str, consultant_slug: str) -> None:
    """Serialise this join, until its transaction ends, with every other join
    from `address` and every join, callback and transfer to the consultant, in
    one statement, so that the counts `_join_target` reads next see every join
    that came first.

    PostgreSQL: a transaction-level advisory lock on the address and the
    consultant's row (read committed: the next statement's snapshot is taken
    after both are held). SQLite: every write transaction is already one at a
    time (`BEGIN IMMEDIATE`, config/settings.py), so there is nothing to add.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if not address:
            cursor.execute(LOCK_JOIN, [consultant_slug])
            return
        digest = hashlib.sha256(address.encode()).digest()
        key = int.from_bytes(digest[:4], "big", signed=True)
        cursor.execute(LOCK_JOIN_FROM_ADDRESS, [ADDRESS_LOCK, key, consultant_slug])


def _count(tickets: QuerySet[Ticket]) -> Func:
    """COUNT(*) of `tickets` as a scalar subquery, for an annotation."""
    counted = tickets.order_by().annotate(
        n=Func(F("pk"), function="COUNT", output_field=IntegerField())
    )
    return Coalesce(Subquery(counted.values("n")[:1]), 0)


def _join_target(*, consultant_slug: str, channel: str, address: str) -> Consultant:
    """The serving consultant with `consultant_slug`, annotated with what a
    join checks, in one read: `already_queued` (this socket holds a live
    ticket), `from_address` (tickets waiting from `address`) and `waiting`
    (the queue's length). Unknown slug: an unsaved Consultant (pk None) with
    only the first two."""
    live_here = Ticket.objects.filter(caller_channel=channel, state__in=LIVE)
    from_address = Ticket.objects.filter(caller_address=address, state=WAITING)
    checks = {
        "already_queued": Exists(live_here),
        "from_address": _count(from_address) if address else Value(0),
    }
    waiting = Ticket.objects.filter(consultant=OuterRef("pk"), state=WAITING)
    consultant = (
        Consultant.objects.serving()
        .filter(slug=consultant_slug)
        .annotate(**checks, waiting=_count(waiting))
        .first()
    )
    if consultant is not None:
        return consultant
    unknown = Consultant()
    unknown.already_queued = live_here.exists()
    unknown.from_address = from_address.count() if address else 0
    return unknown


def under_pressure(consultant: Consultant) -> bool:
    """Whether the `CONSULT_PRESSURE_ADDRESSES` client addresses holding the
    most places in this queue hold at least `CONSULT_PRESSURE_SHARE` of its
    places (`max_queue`): a few networks filling it, as squatters would."""
    busiest = (
        consultant.tickets.filter(state=WAITING)
        .exclude(caller_address="")
        .values("caller_address")
        .annotate(held=Count("id"))
        .order_by("-held")
        .values_list("held", flat=True)[: settings.CONSULT_PRESSURE_ADDRESSES]
    )
    held = sum(busiest)
    return held > 0 and held >= settings.CONSULT_PRESSURE_SHARE * consultant.max_queue


def ticket_add_candidate(*, channel: str, candidate: dict) -> Result[Route | None]:
    """Relay a caller's ICE candidate live (valued with the route taken), or keep
    it with the ticket while the caller waits (valued None); at most
    `MAX_CANDIDATES` are kept."""
    ice = {"type": "ice", "candidate": candidate}
    try:
        # In a call, one read and no lock: candidates come in bursts.
        return consultation_relay(channel=channel, party=Party.CALLER, frame=ice)
    except errors.NotInCall:
        return _keep_candidate(channel=channel, ice=ice)


@transaction.atomic
def _keep_candidate(*, channel: str, ice: dict) -> Result[Route | None]:
    ticket = caller_ticket(channel, lock=True)
    if ticket.state != WAITING:  # accepted since the first read
        return consultation_relay(channel=channel, party=Party.CALLER, frame=ice)
    if len(ticket.candidates) < MAX_CANDIDATES:
        ticket.candidates.append(ice["candidate"])
        ticket.save(update_fields=["candidates"])
    return Result()


@transaction.atomic
def ticket_cancel(*, channel: str) -> Result[None]:
    """The caller leaves the queue of their own accord; `NotQueued` if not waiting."""
    ticket = caller_ticket(channel, lock=True)
    if ticket.state != WAITING:
        raise errors.NotQueued
    now = timezone.now()
    if not quick_cancel(ticket, now=now):
        leave_queue(
            ticket, outcome=Outcome.CANCELLED, by=Party.CALLER, reason="", now=now
        )
    return Result(None, [QueueChanged(ticket.consultant_id)])


def quick_cancel(ticket: Ticket, *, now: datetime) -> bool:
    """End a ticket cancelled within `CONSULT_QUICK_CANCEL_SECONDS` of joining
    without a history row, counting it in `consult_quick_cancels` instead:
    join/cancel churn writes no history. False (and nothing done) if it was
    not that quick."""
    quick = timedelta(seconds=settings.CONSULT_QUICK_CANCEL_SECONDS)
    if now - ticket.created_at >= quick:
        return False
    end_ticket(ticket, now)
    transaction.on_commit(QUICK_CANCELS.inc)
    return True


@transaction.atomic
def ticket_still_here(*, channel: str) -> Result[None]:
    """The caller answered the liveness check (`here`): the question is settled,
    and the next comes `CONSULT_STILL_THERE_AFTER_SECONDS` later. `NotQueued`
    if the socket holds no waiting ticket. Without a question open, nothing
    changes."""
    ticket = caller_ticket(channel, lock=True)
    if ticket.state != WAITING:
        raise errors.NotQueued
    if ticket.still_there_asked_at is not None:
        Ticket.objects.filter(pk=ticket.pk).update(still_there_asked_at=None)
        transaction.on_commit(lambda: _answered(ticket.pk))
    return Result()


def still_there_key(ticket_id) -> str:
    """The cache key that says a caller answered lately: not to be asked again
    until it expires (the sweep asks; consult.services.liveness)."""
    return f"consult:still-here:{ticket_id}"


def _answered(ticket_id) -> None:
    try:
        cache.set(
            still_there_key(ticket_id),
            True,
            timeout=settings.CONSULT_STILL_THERE_AFTER_SECONDS,
        )
    except Exception:
        # Without the mark the caller is only asked again sooner.
        log.warning("could not note a still-there answer", exc_info=True)


NOT_THERE_REASON = "did not answer whether still there"


def still_there_questions(now: datetime):
    """The waiting tickets to ask now whether their caller is still there: waiting
    `CONSULT_STILL_THERE_AFTER_SECONDS` or more, on a socket, not asked yet
    nor answered within as long (for the repair pass)."""
    after = settings.CONSULT_STILL_THERE_AFTER_SECONDS
    if after <= 0:
        return Ticket.objects.none()
    due = list(
        _long_waiting(now).exclude(caller_channel="").values_list("pk", flat=True)
    )
    if not due:
        return Ticket.objects.none()
    try:
        answered = cache.get_many([still_there_key(pk) for pk in due])
    except Exception:
        # Better not to ask than to ask those who have just answered.
        log.warning("could not read the still-there answers", exc_info=True)
        return Ticket.objects.none()
    return Ticket.objects.filter(
        pk__in=[pk for pk in due if still_there_key(pk) not in answered]
    )


def _long_waiting(now: datetime):
    after = timedelta(seconds=settings.CONSULT_STILL_THERE_AFTER_SECONDS)
    return Ticket.objects.filter(
        state=WAITING, still_there_asked_at__isnull=True, created_at__lt=now - after
    )


def still_there_ask(pk, now: datetime) -> list:
    """Ask one long waiter whether they are still there (`still_there`)."""
    ticket = (
        _long_waiting(now)
        .select_for_update(skip_locked=True)
        .filter(pk=pk)
        .exclude(caller_channel="")
        .first()
    )
    if ticket is None:
        return []
    Ticket.objects.filter(pk=pk).update(still_there_asked_at=now)
    window = settings.CONSULT_STILL_THERE_ANSWER_SECONDS
    frame = {"type": "still_there", "answer_within_seconds": round(window)}
    return send(ticket.caller_channel, frame)


def still_there_unanswered(now: datetime):
    """Waiting tickets whose still-there question went unanswered too long."""
    window = timedelta(seconds=settings.CONSULT_STILL_THERE_ANSWER_SECONDS)
    return Ticket.objects.filter(state=WAITING, still_there_asked_at__lt=now - window)


def still_there_expire(pk, now: datetime) -> list:
    """End one ticket whose caller never answered: abandoned, and the caller's
    page (if its socket is there) told with `expired`."""
    ticket = (
        still_there_unanswered(now)
        .select_for_update(skip_locked=True)
        .filter(pk=pk)
        .first()
    )
    if ticket is None:
        return []
    leave_queue(
        ticket,
        outcome=Outcome.ABANDONED,
        by=Party.SYSTEM,
        reason=NOT_THERE_REASON,
        now=now,
    )
    frame = {"type": "expired", "reason": "no_answer"}
    return [*send(ticket.caller_channel, frame), QueueChanged(ticket.consultant_id)]


def answer_within(ticket: Ticket, now: datetime) -> int | None:
    """Seconds left to answer an open still-there question, or None."""
    if ticket.still_there_asked_at is None:
        return None
    window = settings.CONSULT_STILL_THERE_ANSWER_SECONDS
    left = window - (now - ticket.still_there_asked_at).total_seconds()
    return max(0, min(round(window), round(left)))


@transaction.atomic
def ticket_resume(*, token: str, channel: str, process: str) -> Result[Resumption]:
    """Bind a caller's new socket to its ticket.

    Raises `BadToken` (unknown, ended, or dropped longer than the grace) or
    `AlreadyQueued` (this socket holds another ticket).
    """
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("consultant")
        .filter(token_hash=token_hash(token), state__in=LIVE)
        .first()
    )
    now = timezone.now()
    if ticket is None or (ticket.dropped_at and now - ticket.dropped_at > grace()):
        raise errors.BadToken
    if ticket.caller_channel == channel:
        return Result(_resumption(ticket, token))
    if Ticket.objects.filter(caller_channel=channel, state__in=LIVE).exists():
        raise errors.AlreadyQueued
    # A reload can beat the server to noticing that the old socket is gone:
    # the new socket takes over, and the old one hears that it lost the ticket.
    events = [] if ticket.dropped_at else [Released(ticket.caller_channel)]
    Ticket.objects.filter(pk=ticket.pk).update(
        caller_channel=channel, caller_process=process, dropped_at=None
    )
    resumption = _resumption(ticket, token)
    if resumption.kind == "queued":
        events.append(QueueChanged(ticket.consultant_id, moved=False))
    else:
        events += peer_state(ticket.consultation.consultant_channel, "back")
    return Result(resumption, events)


def _resumption(ticket: Ticket, token: str) -> Resumption:
    if ticket.state == WAITING:
        asked = answer_within(ticket, timezone.now())
        return Resumption("queued", ticket, queued_payload(ticket, token), asked)
    resumed: CallerCallPayload = {
        "consultation": ticket.consultation.id,
        "consultant": consultant_ref(ticket.consultant),
    }
    return Resumption("resumed", ticket, resumed)


def caller_dropped(*, channel: str, at: datetime | None = None) -> Result[None]:
    """The caller's socket closed without cancel or hangup: its grace period starts
    (`at`, by default now).

    Most sockets close holding no live ticket (after a hang-up, a cancel, or
    only watching the lobby): one read tells, outside a transaction.
    """
    if not channel:
        return Result()
    if not Ticket.objects.filter(caller_channel=channel, state__in=LIVE).exists():
        return Result()
    return _ticket_dropped(channel=channel, at=at)


@transaction.atomic
def _ticket_dropped(*, channel: str, at: datetime | None) -> Result[None]:
    ticket = (
        Ticket.objects.select_for_update()
        .filter(caller_channel=channel, state__in=LIVE)
        .first()
    )
    if ticket is None:
        return Result()
    Ticket.objects.filter(pk=ticket.pk).update(
        caller_channel="", dropped_at=at or timezone.now()
    )
    if ticket.state == WAITING:
        return Result(None, [QueueChanged(ticket.consultant_id, moved=False)])
    call = Consultation.objects.filter(ticket=ticket).first()
    if call is None:
        # Its consultation was deleted behind the services' back: nothing is
        # left to come back to.
        end_ticket(ticket, timezone.now())
        return Result(None, [PresenceChanged(ticket.consultant_id)])
    return Result(None, peer_state(call.consultant_channel, "reconnecting"))


@transaction.atomic
def ticket_refuse(*, consultant_id: int, ticket_id: str, reason: str) -> Result[None]:
    """Turn a waiting caller of this consultant away with a reason they will read;
    `TicketGone` if it is not waiting in this consultant's queue."""
    ticket = (
        Ticket.objects.select_for_update()
        .filter(pk=ticket_id, consultant_id=consultant_id, state=WAITING)
        .first()
    )
    if ticket is None:
        raise errors.TicketGone
    now = timezone.now()
    events = refuse(ticket, by=Party.CONSULTANT, reason=reason, now=now)
    return Result(None, [*events, QueueChanged(consultant_id, left=str(ticket.id))])
