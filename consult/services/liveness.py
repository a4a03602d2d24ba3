"""Process heartbeats and the repair pass that ends what outlived its grace period."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from consult.events import Event, PresenceChanged, ProcessGone, QueueChanged, Result
from consult.models import (
    Consultant,
    Consultation,
    DeskSocket,
    Presence,
    ServerProcess,
    Ticket,
)

from .connectivity import consultation_fail, unconnected_calls
from .desk import desk_closed
from .notify import notify_due, notify_send
from .recordings import recordings_assemble_due, recordings_purge
from .shared import (
    ACTIVE,
    LIVE,
    OFFLINE_REASON,
    WAITING,
    Outcome,
    Party,
    end_call,
    grace,
    hangup,
    leave_queue,
    process_timeout,
    refuse,
)
from .tickets import (
    caller_dropped,
    still_there_ask,
    still_there_expire,
    still_there_questions,
    still_there_unanswered,
)

log = logging.getLogger(__name__)


# How long a swept process's row is kept: far longer than any pause that a
# process could survive unnoticed.
TOMBSTONE = timedelta(hours=1)


def process_heartbeat(*, process: str, channel: str = "") -> bool:
    """This server process is alive (every `CONSULT_HEARTBEAT_SECONDS`); `channel`
    is its own, in the hub group.

    False when its row was gone: another process took it for dead (a pause
    longer than the process timeout) and handed what its sockets held to the
    grace rule; its sockets must then be closed, for their clients to resume.
    """
    now = timezone.now()
    alive = ServerProcess.objects.filter(pk=process, swept_at__isnull=True)
    if alive.update(heartbeat_at=now):
        return True
    fields = {"heartbeat_at": now, "swept_at": None}
    if channel:
        fields["channel"] = channel
    ServerProcess.objects.update_or_create(pk=process, defaults=fields)
    return False


def process_stopped(*, process: str) -> None:
    """A process that shuts down cleanly (and so closed its sockets, whose clients
    reconnect at once) is swept at once by the next repair pass."""
    now = timezone.now()
    ServerProcess.objects.filter(pk=process).update(
        heartbeat_at=now - timedelta(days=1), stopped_at=now
    )


def sweep(*, now: datetime | None = None) -> Result[None]:
    """End what outlived its grace period; a silent process's sockets count as dropped.

    Safe to run in every process at once and any number of times: each row
    moves under a lock that the others skip, and only while it is still in the
    state being swept. Each row is repaired in its own transaction; one that
    fails is logged with its id and the pass goes on with the others.
    """
    now = now or timezone.now()
    cutoff = now - grace()
    silent_since = now - process_timeout()
    dead = ServerProcess.objects.filter(heartbeat_at__lt=silent_since)
    waiting = Ticket.objects.filter(state=WAITING, dropped_at__lt=cutoff)
    calls = Consultation.objects.filter(outcome=ACTIVE).filter(
        Q(ticket__dropped_at__lt=cutoff) | Q(consultant_dropped_at__lt=cutoff)
    )
    # A consultant left online by a vanished process starts its grace now.
    _deskless().filter(desk_dropped_at__isnull=True).update(desk_dropped_at=now)
    deskless = _deskless().filter(desk_dropped_at__lt=cutoff)
    events = [
        *_repair_each("process", dead, lambda pk: _end_process(pk, silent_since, now)),
        *_repair_each("ticket", waiting, lambda pk: _end_waiting(pk, cutoff, now)),
        *_repair_each("consultation", calls, lambda pk: _end_call(pk, cutoff, now)),
        # Answered calls whose media never flowed (connectivity.py).
        *_repair_each(
            "unconnected call",
            unconnected_calls(now),
            lambda pk: consultation_fail(pk, now),
        ),
        *_repair_each("consultant", deskless, lambda pk: _go_offline(pk, cutoff, now)),
        # The liveness check of long waiters (tickets.py: still_there_*).
        *_repair_each(
            "still-there expiry",
            still_there_unanswered(now),
            lambda pk: still_there_expire(pk, now),
        ),
        *_repair_each(
            "still-there question",
            still_there_questions(now),
            lambda pk: still_there_ask(pk, now),
        ),
        *_repair_each(
            "turn-near e-mail", notify_due(), lambda pk: notify_send(pk, now)
        ),
    ]
    # Recordings: the chunks of stopped ones joined into their files, files
    # past the retention deleted (each isolated; see services.recordings).
    recordings_assemble_due()
    recordings_purge(now=now)
    return Result(None, events)


def _repair_each(kind: str, rows, repair: Callable[[Any], list[Event]]) -> list[Event]:
    events = []
    for pk in list(rows.values_list("pk", flat=True)):
        try:
            with transaction.atomic():
                events += repair(pk)
        except Exception:
            log.exception("repair of %s %s failed; the pass goes on", kind, pk)
    return events


def _end_process(pk: str, silent_since: datetime, now: datetime) -> list[Event]:
    dead = (
        ServerProcess.objects.select_for_update(skip_locked=True)
        .filter(pk=pk, heartbeat_at__lt=silent_since)
        .first()
    )
    if dead is None:
        return []
    # A killed process's clients learn of it late: their grace starts now. A
    # stopped one closed its sockets and its clients came back at once if they
    # could: what it held ends one process timeout after the stop.
    at = None
    if dead.stopped_at is not None:
        at = dead.stopped_at - grace() + process_timeout()
    events = []
    desks = tuple(
        DeskSocket.objects.filter(process=dead.pk).values_list(
            "consultant_id", "channel_name"
        )
    )
    for consultant_id, channel in desks:
        events += desk_closed(
            consultant_id=consultant_id, channel=channel, at=at
        ).events
    if dead.swept_at is None or desks:
        # Out of the hub group and its desks' groups, once it is dead (and
        # again for what it bound after that, while its tombstone lasts).
        events.append(ProcessGone(dead.channel, desks))
    for channel in (
        Ticket.objects.filter(caller_process=dead.pk, state__in=LIVE)
        .exclude(caller_channel="")
        .values_list("caller_channel", flat=True)
    ):
        events += caller_dropped(channel=channel, at=at).events
    if dead.swept_at is None:
        ServerProcess.objects.filter(pk=pk).update(swept_at=now)
    elif now - dead.swept_at > TOMBSTONE:
        dead.delete()
    return events


def _end_waiting(pk, cutoff: datetime, now: datetime) -> list[Event]:
    ticket = (
        Ticket.objects.select_for_update(skip_locked=True)
        .filter(pk=pk, state=WAITING, dropped_at__lt=cutoff)
        .first()
    )
    if ticket is None:
        return []
    leave_queue(
        ticket,
        outcome=Outcome.ABANDONED,
        by=Party.CALLER,
        reason="disconnected",
        now=now,
    )
    return [QueueChanged(ticket.consultant_id)]


def _end_call(pk: int, cutoff: datetime, now: datetime) -> list[Event]:
    call = (
        Consultation.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("ticket")
        .filter(pk=pk, outcome=ACTIVE)
        .first()
    )
    if call is None:
        return []
    caller_gone = call.ticket.dropped_at is not None and call.ticket.dropped_at < cutoff
    by = Party.CALLER if caller_gone else Party.CONSULTANT
    other = call.consultant_channel if caller_gone else call.ticket.caller_channel
    end_call(call, outcome=Outcome.DISCONNECTED, by=by, reason="disconnected", now=now)
    return [
        *hangup(other, call.id, by, reason="disconnected"),
        PresenceChanged(call.consultant_id),
    ]


def _deskless():
    has_desk = Exists(DeskSocket.objects.filter(consultant=OuterRef("pk")))
    return Consultant.objects.exclude(presence=Presence.OFFLINE).filter(~has_desk)


def _go_offline(pk: int, cutoff: datetime, now: datetime) -> list[Event]:
    """A consultant deskless past the grace goes offline; their callers are told."""
    consultant = (
        _deskless()
        .select_for_update(skip_locked=True)
        .filter(pk=pk, desk_dropped_at__lt=cutoff)
        .first()
    )
    if consultant is None:
        return []
    Consultant.objects.filter(pk=pk).update(presence=Presence.OFFLINE)
    events = []
    for ticket in Ticket.objects.select_for_update().filter(
        consultant_id=pk, state=WAITING
    ):
        events += refuse(ticket, by=Party.SYSTEM, reason=OFFLINE_REASON, now=now)
    return [*events, PresenceChanged(pk), QueueChanged(pk)]
