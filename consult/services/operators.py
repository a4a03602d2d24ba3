"""What operators do from the admin, through the same rules as the sockets."""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult import errors
from consult.events import PresenceChanged, QueueChanged, Result
from consult.models import Consultation, Ticket

from .shared import ACTIVE, WAITING, Outcome, Party, end_call, hangup, refuse

ENDED_BY_OPERATOR = "ended_by_operator"
REMOVED_REASON = "An operator removed you from the queue."


@transaction.atomic
def consultation_end_by_operator(*, consultation_id: int) -> Result[None]:
    """End an active consultation: both parties get `hangup` {by: "operator"} at
    once and the history says who ended it; `NotInCall` if it is not active."""
    call = (
        Consultation.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .filter(pk=consultation_id, outcome=ACTIVE)
        .first()
    )
    if call is None:
        raise errors.NotInCall(_("That consultation is no longer active."))
    caller, desk = call.ticket.caller_channel, call.consultant_channel
    end_call(
        call,
        outcome=Outcome.COMPLETED,
        by=Party.OPERATOR,
        reason=ENDED_BY_OPERATOR,
        now=timezone.now(),
    )
    events = [
        *hangup(caller, call.id, Party.OPERATOR, reason=ENDED_BY_OPERATOR),
        *hangup(desk, call.id, Party.OPERATOR, reason=ENDED_BY_OPERATOR),
        PresenceChanged(call.consultant_id),
    ]
    return Result(None, events)


@transaction.atomic
def ticket_remove(*, ticket_id: str) -> Result[None]:
    """Take a waiting caller out of the queue: they get `refused` with the reason;
    `TicketGone` if the ticket is not waiting."""
    ticket = (
        Ticket.objects.select_for_update().filter(pk=ticket_id, state=WAITING).first()
    )
    if ticket is None:
        raise errors.TicketGone(_("That ticket is no longer waiting."))
    # Staff removed them, maybe for cause: no place to carry elsewhere.
    events = refuse(
        ticket,
        by=Party.OPERATOR,
        reason=REMOVED_REASON,
        now=timezone.now(),
        movable=False,
    )
    return Result(None, [*events, QueueChanged(ticket.consultant_id)])
