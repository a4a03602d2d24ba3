"""A caller keeps their seniority across queues: a move after a refusal, a transfer.

A caller is placed by when they first joined (`Ticket.created_at`), not at the
back of the new queue. A move is allowed once per refusal (or offline event,
which refuses too), within `CONSULT_MOVE_SECONDS`, to another queue: leaving
and joining again gives no such right, so nobody can jump ahead that way.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from consult import errors
from consult.events import QueueChanged, Result
from consult.models import Consultation, Ticket

from .shared import (
    WAITING,
    consultant_ref,
    move_hash,
    queued_payload,
    send,
    transfer_target,
)
from .tickets import Joined, ticket_create


@transaction.atomic
def ticket_move(*, move_token: str, consultant_slug: str, **join) -> Result[Joined]:
    """Join `consultant_slug`'s queue as `ticket_create` does (same keywords),
    placed by the join time of the refused ticket that `move_token` names.

    Raises `CannotMove` when the token names no refused ticket, was used, is
    older than `CONSULT_MOVE_SECONDS`, or names a ticket of that same queue
    (unless its call failed to connect: then the token is that queue's retry);
    then whatever `ticket_create` raises (and the right to move is kept).
    """
    # A transfer's token names its queue; a refusal's fits any other.
    hashes = [move_hash(move_token), move_hash(move_token, consultant_slug)]
    old = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("consultant", "came_from")
        .filter(move_hash__in=hashes, state=Ticket.State.ENDED)
        .first()
    )
    now = timezone.now()
    window = timedelta(seconds=settings.CONSULT_MOVE_SECONDS)
    if old is None or old.ended_at < now - window:
        raise errors.CannotMove
    # Never back into a queue that refused this caller: every ticket of a
    # chain of moves keeps the first join time, and so does its history row.
    refused_by = Consultation.objects.filter(
        requested_at=old.created_at, outcome=Consultation.Outcome.REFUSED
    ).values_list("consultant__slug", flat=True)
    # A call that failed to connect gives a retry in its own queue (connectivity.py).
    retry = Consultation.objects.filter(
        ticket=old, outcome=Consultation.Outcome.FAILED
    ).exists()
    same_queue = consultant_slug == old.consultant.slug
    if (same_queue and not retry) or consultant_slug in refused_by:
        raise errors.CannotMove
    Ticket.objects.filter(pk=old.pk).update(move_hash="", transfer_note="")
    created = ticket_create(consultant_slug=consultant_slug, **join)
    ticket = created.value.ticket
    # `created_at` is set on insert (auto_now_add): an update is the way to
    # give the ticket its original place.
    # A retry in the same queue came from nowhere else.
    came_from = None if same_queue else old.consultant
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=old.created_at,
        came_from=came_from,
        transfer_note=old.transfer_note,
    )
    ticket.created_at, ticket.came_from = old.created_at, came_from
    joined = Joined(ticket, queued_payload(ticket, created.value.queued["token"]))
    # Not at the tail: the callers behind it move down.
    return Result(joined, [QueueChanged(ticket.consultant_id)])


@transaction.atomic
def ticket_transfer(
    *, consultant_id: int, ticket_id: str, to_slug: str, note: str
) -> Result[None]:
    """Hand a caller waiting in this consultant's queue to a colleague's, with a
    note the colleague's desk shows; the caller keeps their join time and is
    told (`transferred`). Raises `TicketGone`, or `BadTransfer` when the
    colleague is unknown, this consultant, offline or full.
    """
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .filter(pk=ticket_id, consultant_id=consultant_id, state=WAITING)
        .first()
    )
    if ticket is None:
        raise errors.TicketGone
    colleague = transfer_target(consultant_id=consultant_id, to_slug=to_slug)
    Ticket.objects.filter(pk=ticket.pk).update(
        consultant=colleague, came_from_id=consultant_id, transfer_note=note
    )
    frame = {"type": "transferred", "consultant": consultant_ref(colleague)}
    return Result(
        None,
        [
            *send(ticket.caller_channel, frame),
            QueueChanged(consultant_id),
            QueueChanged(colleague.id),
        ],
    )
