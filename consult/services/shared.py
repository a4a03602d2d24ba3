"""What the service modules share: states, the grace rule, history rows, frames.

Parties are identified by their socket's channel name as the database holds
it, never by a name a client sent.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db.models import Case, Value, When

from consult import errors
from consult.events import SendFrame
from consult.models import Consultant, Consultation, Presence, Ticket
from consult.selectors import ticket_position

from .privacy import ticket_erasure
from .recordings import recordings_close

WAITING = Ticket.State.WAITING
IN_CALL = Ticket.State.IN_CALL
LIVE = [WAITING, IN_CALL]
ACTIVE = Consultation.Outcome.ACTIVE
Outcome = Consultation.Outcome
Party = Consultation.Party
OFFLINE_REASON = "The consultant went offline."


class QueuedPayload(TypedDict):
    """The `queued` frame's fields (docs/protocol.md)."""

    ticket: str
    token: str
    position: int
    eta_seconds: int | None
    wait_range: dict[str, int] | None
    consultant_message: str


class ConsultantRef(TypedDict):
    slug: str
    name: str


class CallerRef(TypedDict):
    ticket: str
    name: str


class DeskCallPayload(TypedDict):
    """The `resumed` frame's fields for a desk that takes a call back."""

    consultation: int
    caller: CallerRef


def token_hash(token: str) -> str:
    """The stored form of a resume token: hex SHA-256; the token itself is not kept."""
    return hashlib.sha256(token.encode()).hexdigest()


def grace() -> timedelta:
    """How long a party that lost its socket may take to come back (a setting)."""
    return timedelta(seconds=settings.CONSULT_GRACE_SECONDS)


def process_timeout() -> timedelta:
    """How long a process may miss heartbeats before it counts as dead."""
    return timedelta(seconds=settings.CONSULT_PROCESS_TIMEOUT_SECONDS)


def consultant_ref(consultant: Consultant) -> ConsultantRef:
    return {"slug": consultant.slug, "name": consultant.name}


def desk_call_payload(call: Consultation) -> DeskCallPayload:
    return {
        "consultation": call.id,
        "caller": {"ticket": str(call.ticket_id), "name": call.caller_name},
    }


def queued_payload(
    ticket: Ticket, token: str, *, ahead: int | None = None
) -> QueuedPayload:
    """The `queued` frame of a waiting ticket whose consultant is loaded;
    `ahead`, the tickets before it, when the caller has counted them."""
    position, (eta, span) = ticket_position(
        ticket, ahead=ahead, presence=ticket.consultant.presence
    )
    return {
        "ticket": str(ticket.id),
        "token": token,
        "position": position,
        "eta_seconds": eta,
        "wait_range": span.as_frame() if span else None,
        "consultant_message": ticket.consultant.queue_message,
    }


def send(
    channel: str,
    frame: dict[str, Any],
    *,
    call: int | None = None,
    stale_route: bool = False,
    ends_call: bool = False,
) -> list[SendFrame]:
    """A frame for a socket, or nothing while that party is away."""
    if not channel:
        return []
    return [
        SendFrame(
            channel, frame, call=call, stale_route=stale_route, ends_call=ends_call
        )
    ]


def peer_state(channel: str, state: str) -> list[SendFrame]:
    """`peer` {state}: the other party of a call left or came back on a new socket,
    so the receiver's route to it no longer holds."""
    return send(channel, {"type": "peer", "state": state}, stale_route=True)


def history_row(ticket: Ticket, **fields) -> Consultation:
    """The consultation row of a ticket: a call, or a request that got none."""
    return Consultation.objects.create(
        consultant_id=ticket.consultant_id,
        ticket=ticket,
        caller_name=ticket.caller_name,
        reason=ticket.reason,
        audio_only=ticket.audio_only,
        connectivity=ticket.connectivity,
        requested_at=ticket.created_at,
        **fields,
    )


def end_ticket(ticket: Ticket, now: datetime) -> None:
    """Take the ticket out of play, erasing the caller's personal data, token,
    signaling and socket from it; the history keeps what is kept."""
    Ticket.objects.filter(pk=ticket.pk).update(
        state=Ticket.State.ENDED, ended_at=now, **ticket_erasure()
    )


def leave_queue(ticket: Ticket, *, outcome: str, by: str, reason: str, now) -> None:
    """End a waiting ticket, and keep its history: a request that got no call."""
    end_ticket(ticket, now)
    history_row(ticket, ended_at=now, ended_by=by, end_reason=reason, outcome=outcome)


def refuse(
    ticket: Ticket, *, by: str, reason: str, now: datetime, movable: bool = True
) -> list[SendFrame]:
    """Turn a waiting caller away: the history, and the `refused` frame for them,
    with the `move_token` that lets them carry their join time to another queue
    once (services.moves) unless not `movable` (an operator removed them)."""
    leave_queue(ticket, outcome=Outcome.REFUSED, by=by, reason=reason, now=now)
    frame = {"type": "refused", "reason": reason}
    if movable:
        frame["move_token"] = issue_move_token(ticket)
    return send(ticket.caller_channel, frame)


def caller_ticket(channel: str, *, lock: bool = False) -> Ticket:
    """The live ticket that this caller socket holds; `NotQueued` if none."""
    tickets = Ticket.objects.select_related("consultant")
    if lock:
        tickets = tickets.select_for_update(of=("self",))
    ticket = tickets.filter(caller_channel=channel, state__in=LIVE).first()
    if ticket is None or not channel:
        raise errors.NotQueued
    return ticket


def end_call(
    call: Consultation, *, outcome: str, by: str, reason: str, now: datetime
) -> None:
    """End an active consultation with `outcome`, or as `failed` when no browser
    ever reported media connected (read in the same statement, so a report
    that raced the end is counted). Its open recording stops in a statement of
    its own: one asked for while this call's row was being locked is seen."""
    failed = When(media_connected_at__isnull=True, then=Value(Outcome.FAILED))
    Consultation.objects.filter(pk=call.pk).update(
        outcome=Case(failed, default=Value(outcome)),
        ended_by=by,
        end_reason=reason,
        ended_at=now,
        consultant_channel="",
    )
    recordings_close(call, by=by, now=now)
    end_ticket(call.ticket, now)


def hangup(channel: str, call: int, by: str, **fields) -> list[SendFrame]:
    """`hangup` {by, reason?} for the other party: the call and its route are over."""
    frame = {"type": "hangup", "by": by, **fields}
    return send(channel, frame, call=call, stale_route=True, ends_call=True)


def serving_consultant(slug: str) -> Consultant | None:
    """The active consultant with `slug`, locked: joins, callbacks and transfers
    to one consultant are serialised on this row, so their caps hold under races."""
    return (
        Consultant.objects.select_for_update(of=("self",))
        .serving()
        .filter(slug=slug)
        .first()
    )


def transfer_target(*, consultant_id: int, to_slug: str) -> Consultant:
    """The colleague a caller may be handed to, locked: serving, not this
    consultant, not offline, with room in their queue; else `BadTransfer`."""
    colleague = serving_consultant(to_slug)
    if colleague is None or colleague.pk == consultant_id:
        raise errors.BadTransfer
    if colleague.presence == Presence.OFFLINE:
        raise errors.BadTransfer
    if colleague.tickets.filter(state=WAITING).count() >= colleague.max_queue:
        raise errors.BadTransfer
    return colleague


def issue_move_token(ticket: Ticket, *, note: str = "", to_slug: str = "") -> str:
    """An ended ticket's right to carry its join time to another queue once
    (services.moves), as the token its caller gets; `note` goes with it. With
    `to_slug` the token is good for that consultant's queue only."""
    token = secrets.token_urlsafe(32)
    Ticket.objects.filter(pk=ticket.pk).update(
        move_hash=move_hash(token, to_slug), transfer_note=note
    )
    return token


def move_hash(token: str, to_slug: str = "") -> str:
    """The stored form of a move token, bound to a queue when `to_slug` is set."""
    return token_hash(f"{token}:{to_slug}" if to_slug else token)
