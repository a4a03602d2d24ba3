"""A consultation from accept to hang-up: the answer, the relay, the media report,
and a transfer to a colleague."""

from typing import Any, TypedDict

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from consult import errors
from consult.events import PresenceChanged, QueueChanged, Result, Route, SendFrame
from consult.models import Consultation, Ticket

from .shared import (
    ACTIVE,
    IN_CALL,
    WAITING,
    Outcome,
    Party,
    consultant_ref,
    end_call,
    hangup,
    history_row,
    issue_move_token,
    send,
    transfer_target,
)


class CallerPayload(TypedDict):
    """The `caller` frame's fields: who the desk took, with the offer to answer."""

    ticket: str
    consultation: int
    name: str
    reason: str
    audio_only: bool
    offer: dict[str, str]
    candidates: list[dict[str, Any]]


def _active_calls(channel: str, party: str) -> QuerySet[Consultation]:
    """The active consultation that this socket holds as `party`, as a query."""
    if not channel:
        raise errors.NotInCall
    calls = Consultation.objects.filter(outcome=ACTIVE)
    if party == Party.CALLER:
        return calls.filter(ticket__caller_channel=channel)
    return calls.filter(consultant_channel=channel)


def _active_call(channel: str, party: str, *, lock: bool = False) -> Consultation:
    """The active consultation this socket holds as `party`; `NotInCall` if none."""
    calls = _active_calls(channel, party).select_related("ticket", "consultant")
    if lock:
        calls = calls.select_for_update(of=("self",))
    try:
        return calls.get()  # one at most: a socket holds one call
    except Consultation.DoesNotExist:
        raise errors.NotInCall from None


def _claim(consultant_id: int, ticket_id: str | None) -> Ticket | None:
    """One waiting ticket for this desk to take, its row locked (the caller
    moves it to in_call); exactly one of several racing desks gets a ticket.

    PostgreSQL makes a racing desk wait for the winner's lock and then finds
    the row no longer waiting; SQLite's IMMEDIATE transactions serialise. The
    head (or the chosen ticket) is read first; only a desk that lost such a
    race (the locked read finds nothing while tickets wait) tries the next
    ones, each with a locked read of its own.
    """
    waiting = Ticket.objects.filter(consultant_id=consultant_id, state=WAITING)
    if ticket_id is not None:
        waiting = waiting.filter(pk=ticket_id)
    head = waiting.select_for_update().first()
    if head is not None or ticket_id is not None:
        return head
    for pk in waiting.values_list("pk", flat=True)[:10]:
        ticket = waiting.filter(pk=pk).select_for_update().first()
        if ticket is not None:
            return ticket
    return None


@transaction.atomic
def ticket_accept(
    *, consultant_id: int, channel: str, process: str, ticket_id: str | None = None
) -> Result[CallerPayload]:
    """Take the next (or a chosen) caller and start their consultation.

    Raises `TicketGone` (that ticket is not waiting here), `QueueEmpty`, or
    `Busy` (this consultant is already in a call, which the database's one
    active consultation per consultant says; the claim rolls back).
    """
    ticket = _claim(consultant_id, ticket_id)
    if ticket is None:
        raise errors.TicketGone if ticket_id else errors.QueueEmpty
    try:
        call = history_row(
            ticket,
            accepted_at=timezone.now(),
            consultant_channel=channel,
            consultant_process=process,
        )
    except IntegrityError:
        # The whole transaction rolls back: the ticket waits on.
        raise errors.Busy from None
    Ticket.objects.filter(pk=ticket.pk).update(state=IN_CALL, offer="", candidates=[])
    caller: CallerPayload = {
        "ticket": str(ticket.id),
        "consultation": call.id,
        "name": ticket.caller_name,
        "reason": ticket.reason,
        "audio_only": ticket.audio_only,
        "offer": {"type": "offer", "sdp": ticket.offer},
        "candidates": ticket.candidates,
    }
    left = QueueChanged(consultant_id, left=str(ticket.id))
    return Result(caller, [left, PresenceChanged(consultant_id)])


def consultation_answer(*, channel: str, answer: dict) -> Result[Route]:
    """The consultant's answer: the first is `accepted` for the caller, later
    ones relay. The value is the desk's `Route` to the caller; `NotInCall` if
    this desk socket holds no call.

    No transaction: one read, and for the first answer one conditional UPDATE
    of `connected_at` on the call still active and still this desk's, which
    only one of two racing answers wins (the other is relayed as a later one);
    a call that ended in between is `NotInCall`.
    """
    mine = _active_calls(channel, Party.CONSULTANT)
    found = mine.values_list(
        "id",
        "ticket__caller_channel",
        "connected_at",
        "consultant__slug",
        "consultant__name",
    ).first()
    if found is None:
        raise errors.NotInCall
    call_id, caller_channel, connected_at, slug, name = found
    route = Route(call_id, caller_channel)
    relayed = Result(route, route.send({"type": "answer", "answer": answer}))
    if connected_at is not None or not route.channel:
        return relayed
    first = mine.filter(pk=call_id, connected_at__isnull=True)
    if not first.update(connected_at=timezone.now()):
        if not mine.filter(pk=call_id).exists():
            raise errors.NotInCall  # hung up since the read
        return relayed
    accepted = {
        "type": "accepted",
        "consultation": call_id,
        "consultant": {"slug": slug, "name": name},
        "answer": answer,
    }
    # Both parties learn their route here, before the first candidate.
    told = SendFrame(route.channel, accepted, call=call_id, reply_to=channel)
    return Result(route, [told])


def consultation_relay(*, channel: str, party: str, frame: dict) -> Result[Route]:
    """Pass a frame to the other party of this socket's call, and no one else.

    The value is the `Route` taken, for the consumer to reuse; `NotInCall` if
    this socket holds no call.
    """
    other = "consultant_channel" if party == Party.CALLER else "ticket__caller_channel"
    found = _active_calls(channel, party).values_list("id", other)[:1]
    if not found:
        raise errors.NotInCall
    route = Route(*found[0])
    return Result(route, route.send(frame))


def consultation_media_connected(*, channel: str, party: str) -> Result[None]:
    """A browser of the call reports media flowing (its RTCPeerConnection is
    `connected`): the first report starts the talk time. `NotInCall` if this
    socket holds no call."""
    call_ids = _active_calls(channel, party).values("pk")
    updated = Consultation.objects.filter(
        pk__in=call_ids, media_connected_at__isnull=True
    ).update(media_connected_at=timezone.now())
    if not updated and not _active_calls(channel, party).exists():
        raise errors.NotInCall
    return Result()


@transaction.atomic
def consultation_end(*, channel: str, party: str) -> Result[int]:
    """Hang up: the other party hears who ended the call. The value is the
    consultation's id; `NotInCall` if this socket holds no call."""
    call = _active_call(channel, party, lock=True)
    other = (
        call.consultant_channel if party == Party.CALLER else call.ticket.caller_channel
    )
    end_call(call, outcome=Outcome.COMPLETED, by=party, reason="", now=timezone.now())
    events = hangup(other, call.id, party)
    return Result(call.id, [*events, PresenceChanged(call.consultant_id)])


@transaction.atomic
def consultation_transfer(
    *, consultant_id: int, channel: str, to_slug: str, note: str
) -> Result[int]:
    """Hand the caller of this desk's call to a colleague (`to_slug`), with a
    note for them. The call ends (completed, by the consultant, reason
    "Transferred to NAME"); both parties get `transferred` {consultant}, the
    caller with a `move_token` that joins the colleague's queue at their
    original join time (services.moves). The value is the consultation's id.
    Raises `NotInCall`, or `BadTransfer` as `transfer_target` does.
    """
    call = _active_call(channel, Party.CONSULTANT, lock=True)
    colleague = transfer_target(consultant_id=consultant_id, to_slug=to_slug)
    caller_channel = call.ticket.caller_channel
    end_call(
        call,
        outcome=Outcome.COMPLETED,
        by=Party.CONSULTANT,
        reason=f"Transferred to {colleague.name}",
        now=timezone.now(),
    )
    move_token = issue_move_token(call.ticket, note=note, to_slug=colleague.slug)
    to = consultant_ref(colleague)
    told = {"type": "transferred", "consultant": to, "move_token": move_token}
    frames = [
        *send(caller_channel, told, call=call.id, stale_route=True, ends_call=True),
        *send(channel, {"type": "transferred", "consultant": to}),
    ]
    return Result(call.id, [*frames, PresenceChanged(consultant_id)])
