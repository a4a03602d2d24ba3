"""A caller's ticket: join, candidates while waiting, cancel, resume, drop, refusal."""

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consult import errors
from consult.events import PresenceChanged, QueueChanged, Released, Result, Route
from consult.models import Consultant, Consultation, Presence, Ticket

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
    token_hash,
)

# Browsers gather a handful of candidates; this bounds what a waiting caller
# can make us store.
MAX_CANDIDATES = 64


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
) -> Result[Joined]:
    """Queue a caller with the offer (SDP text) the consultant will answer.

    `address` is the client's, when known: it may have only
    `CONSULT_MAX_WAITING_PER_ADDRESS` tickets waiting at once. Two joins racing
    from one address may both pass; the per-address socket cap and the
    per-socket rate limit bound that. Raises `AlreadyQueued`,
    `TooManyFromAddress`, `UnknownConsultant`, `ConsultantUnavailable` or
    `QueueFull`.
    """
    if Ticket.objects.filter(caller_channel=channel, state__in=LIVE).exists():
        raise errors.AlreadyQueued
    if address and _waiting_from(address) >= settings.CONSULT_MAX_WAITING_PER_ADDRESS:
        raise errors.TooManyFromAddress
    # The lock serialises joins per consultant, so max_queue holds under races.
    consultant = (
        Consultant.objects.select_for_update(of=("self",))
        .serving()
        .filter(slug=consultant_slug)
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
    joined = Joined(ticket, queued_payload(ticket, token))
    return Result(joined, [QueueChanged(consultant.id, moved=False)])


def _waiting_from(address: str) -> int:
    return Ticket.objects.filter(caller_address=address, state=WAITING).count()


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
    leave_queue(ticket, outcome=Outcome.CANCELLED, by=Party.CALLER, reason="", now=now)
    return Result(None, [QueueChanged(ticket.consultant_id)])


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
        return Resumption("queued", ticket, queued_payload(ticket, token))
    resumed: CallerCallPayload = {
        "consultation": ticket.consultation.id,
        "consultant": consultant_ref(ticket.consultant),
    }
    return Resumption("resumed", ticket, resumed)


@transaction.atomic
def caller_dropped(*, channel: str, at: datetime | None = None) -> Result[None]:
    """The caller's socket closed without cancel or hangup: its grace period starts
    (`at`, by default now)."""
    ticket = (
        Ticket.objects.select_for_update()
        .filter(caller_channel=channel, state__in=LIVE)
        .first()
    )
    if ticket is None or not channel:
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
    return Result(None, [*events, QueueChanged(consultant_id)])
