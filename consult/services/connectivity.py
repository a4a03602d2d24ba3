"""Calls that connect, or say why not: the connecting deadline and the watchdog's
record (docs/connectivity.md).

A call whose media never flowed within `CONSULT_CONNECT_SECONDS` plus
`CONSULT_CONNECT_RESCUE_SECONDS` of the answer is ended by the repair pass as
failed to connect, and its caller gets a token that joins the same queue again
at the original join time: the head of the line, for a retry. The pages'
watchdogs report each rung of their ladder here; the consultation keeps the
furthest rung and the one that rescued it, for the operations analytics.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from consult.events import Event, PresenceChanged, Result, Route
from consult.models import Consultation, WatchdogStep

from .calls import _active_call
from .shared import ACTIVE, Outcome, Party, end_call, hangup, issue_move_token

FAILED_REASON = "failed"
# The ladder's rungs in order: a report of an earlier one never lowers the record.
LADDER = [step.value for step in WatchdogStep if step.value]


def connect_deadline() -> timedelta:
    """How long after the answer a call may go without media before it fails."""
    return timedelta(
        seconds=settings.CONSULT_CONNECT_SECONDS
        + settings.CONSULT_CONNECT_RESCUE_SECONDS
    )


def unconnected_calls(now: datetime) -> QuerySet[Consultation]:
    """Active calls answered longer than `connect_deadline()` ago whose media
    never flowed (no browser reported `media` connected)."""
    return Consultation.objects.filter(
        outcome=ACTIVE,
        media_connected_at__isnull=True,
        connected_at__lt=now - connect_deadline(),
    )


def consultation_fail(pk: int, now: datetime) -> list[Event]:
    """End one call of `unconnected_calls` as failed to connect (by the system).

    The consultant gets `hangup` {by: "system", reason: "failed"}; the caller
    the same with a `move_token` that joins this queue again at the original
    join time (services.moves). Nothing happens when the call connected or
    ended meanwhile, or another process holds it.
    """
    call = (
        unconnected_calls(now)
        .select_for_update(skip_locked=True, of=("self",))
        .select_related("ticket", "consultant")
        .filter(pk=pk)
        .first()
    )
    if call is None:
        return []
    caller = call.ticket.caller_channel
    end_call(
        call, outcome=Outcome.FAILED, by=Party.SYSTEM, reason=FAILED_REASON, now=now
    )
    retry = issue_move_token(call.ticket, to_slug=call.consultant.slug)
    return [
        *hangup(call.consultant_channel, call.id, Party.SYSTEM, reason=FAILED_REASON),
        *hangup(caller, call.id, Party.SYSTEM, reason=FAILED_REASON, move_token=retry),
        PresenceChanged(call.consultant_id),
    ]


@transaction.atomic
def consultation_watchdog(
    *, channel: str, party: str, step: str, recovered: bool
) -> Result[Route]:
    """A page's watchdog took rung `step` of its ladder (or, `recovered`, media
    flows again after it): record it on this socket's call and pass the frame
    to the other party. The value is the route taken; `NotInCall` if this
    socket holds no call.
    """
    call = _active_call(channel, party, lock=True)
    calls = Consultation.objects.filter(pk=call.pk)
    if recovered:
        calls.update(rescued_by=step)
    elif call.watchdog_step == "" or LADDER.index(step) > LADDER.index(
        call.watchdog_step
    ):
        calls.update(watchdog_step=step)
    other = (
        call.consultant_channel if party == Party.CALLER else call.ticket.caller_channel
    )
    route = Route(call.id, other)
    frame = {"type": "watchdog", "step": step, "recovered": recovered}
    return Result(route, route.send(frame))
