"""Process heartbeats and the repair pass that ends what outlived its grace period."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from consult.events import Event, PresenceChanged, QueueChanged, Result
from consult.models import (
    Consultant,
    Consultation,
    DeskSocket,
    Presence,
    ServerProcess,
    Ticket,
)

from .desk import desk_closed
from .shared import (
    ACTIVE,
    LIVE,
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
from .tickets import caller_dropped

OFFLINE_REASON = "The consultant went offline."


def process_heartbeat(*, process: str) -> None:
    """This server process is alive (every `CONSULT_HEARTBEAT_SECONDS`)."""
    ServerProcess.objects.update_or_create(
        pk=process, defaults={"heartbeat_at": timezone.now()}
    )


def process_stopped(*, process: str) -> None:
    """A process that shuts down cleanly hands its sockets to the grace rule at once."""
    ServerProcess.objects.filter(pk=process).update(
        heartbeat_at=timezone.now() - timedelta(days=1)
    )


def sweep(*, now: datetime | None = None) -> Result[None]:
    """End what outlived its grace period; a silent process's sockets count as dropped.

    Safe to run in every process at once: each row moves under a lock that the
    others skip, and only while it is still in the state being swept.
    """
    now = now or timezone.now()
    cutoff = now - grace()
    events = [
        *_sweep_dead_processes(now),
        *_sweep_waiting(cutoff, now),
        *_sweep_calls(cutoff, now),
        *_sweep_desks(cutoff, now),
    ]
    return Result(None, events)


def _sweep_dead_processes(now: datetime) -> list[Event]:
    silent_since = now - process_timeout()
    events = []
    for process in ServerProcess.objects.filter(heartbeat_at__lt=silent_since):
        with transaction.atomic():
            dead = (
                ServerProcess.objects.select_for_update(skip_locked=True)
                .filter(pk=process.pk, heartbeat_at__lt=silent_since)
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


def _sweep_waiting(cutoff: datetime, now: datetime) -> list[Event]:
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
            leave_queue(
                ticket,
                outcome=Outcome.ABANDONED,
                by=Party.CALLER,
                reason="disconnected",
                now=now,
            )
            events.append(QueueChanged(ticket.consultant_id))
    return events


def _sweep_calls(cutoff: datetime, now: datetime) -> list[Event]:
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
            end_call(
                call,
                outcome=Outcome.DISCONNECTED,
                by=by,
                reason="disconnected",
                now=now,
            )
            events += hangup(other, call.id, by, reason="disconnected")
            events.append(PresenceChanged(call.consultant_id))
    return events


def _sweep_desks(cutoff: datetime, now: datetime) -> list[Event]:
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
                events += refuse(
                    ticket, by=Party.SYSTEM, reason=OFFLINE_REASON, now=now
                )
            events += [PresenceChanged(pk), QueueChanged(pk)]
    return events
