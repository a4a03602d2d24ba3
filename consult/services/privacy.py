"""Callers' personal data: erased from a ticket when it ends, kept in the
history for `CONSULT_HISTORY_RETENTION_DAYS`, then anonymised.

A ticket holds the caller's name, reason, address, resume token and
signaling only while it is live. The history (`Consultation`) keeps the
caller's name, reason and the end's free text for the retention period; after
it, or at once on an admin's request, only the figures stay: times, outcome,
who ended it, consultant, audio only.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from consult.models import Callback, CallFeedback, Consultation, Ticket

# An ended ticket's token hash: unique as the column needs, and no token's.
ERASED_MARK = "erased:"
# Ended tickets (already erased) are deleted after this: no socket asks for
# one by then, and the history has all that is kept.
ENDED_TICKETS_KEPT = timedelta(days=1)


def ticket_erasure() -> dict:
    """The fields to set on ended tickets: no personal data, no token, no socket."""
    return {
        "caller_name": "",
        "reason": "",
        "caller_address": "",
        "notify_email": "",
        "transfer_note": "",
        "offer": "",
        "candidates": [],
        "caller_channel": "",
        "token_hash": Concat(Value(ERASED_MARK), Cast("id", CharField())),
    }


@dataclass(frozen=True)
class Purged:
    """What a purge did: consultations anonymised, ended tickets erased and
    deleted, callbacks left unhandled past `CONSULT_CALLBACK_DAYS` deleted."""

    anonymised: int
    tickets_erased: int
    tickets_deleted: int
    callbacks_deleted: int = 0


def _ended(calls: QuerySet[Consultation]) -> QuerySet[Consultation]:
    """These consultations, once ended, their ended tickets deleted."""
    ended = calls.exclude(outcome=Consultation.Outcome.ACTIVE)
    Ticket.objects.filter(
        state=Ticket.State.ENDED, consultation__in=ended.values("pk")
    ).delete()
    return ended


def _anonymise(calls: QuerySet[Consultation], now: datetime) -> int:
    """Anonymise these consultations if ended; the number anonymised."""
    ended = _ended(calls)
    # The caller's comment on the call is their own words too; the rating stays.
    CallFeedback.objects.filter(consultation__in=ended.values("pk")).update(comment="")
    return ended.update(caller_name="", reason="", end_reason="", anonymised_at=now)


@transaction.atomic
def consultations_erase(*, consultation_ids: list[int]) -> int:
    """Erase the caller's personal data from these consultations now (an admin's
    action on a caller's request); active ones are left alone. The number erased."""
    calls = Consultation.objects.filter(pk__in=consultation_ids)
    return _anonymise(calls, timezone.now())


@transaction.atomic
def consultations_delete(*, consultation_ids: list[int]) -> int:
    """Delete these consultations, once ended, with their tickets; the number
    deleted."""
    deleted, _ = _ended(Consultation.objects.filter(pk__in=consultation_ids)).delete()
    return deleted


@transaction.atomic
def history_purge(*, now: datetime | None = None) -> Purged:
    """The schedule's pass (`manage.py purge_history`): anonymise the history older
    than the retention, erase any ended ticket still holding personal data,
    and delete ended tickets older than `ENDED_TICKETS_KEPT`. Idempotent."""
    now = now or timezone.now()
    retained = timedelta(days=settings.CONSULT_HISTORY_RETENTION_DAYS)
    old = Consultation.objects.filter(
        ended_at__lt=now - retained, anonymised_at__isnull=True
    )
    anonymised = _anonymise(old, now)
    ended = Ticket.objects.filter(state=Ticket.State.ENDED)
    erased = ended.exclude(token_hash__startswith=ERASED_MARK).update(
        **ticket_erasure()
    )
    # A right to move that ran out takes the transfer note with it.
    moved_by = now - timedelta(seconds=settings.CONSULT_MOVE_SECONDS)
    ended.filter(ended_at__lt=moved_by).exclude(move_hash="").update(
        move_hash="", transfer_note=""
    )
    deleted, _ = ended.filter(ended_at__lt=now - ENDED_TICKETS_KEPT).delete()
    # A callback nobody handled holds a name and a phone number: not forever.
    stale = now - timedelta(days=settings.CONSULT_CALLBACK_DAYS)
    callbacks, _ = Callback.objects.filter(created_at__lt=stale).delete()
    return Purged(anonymised, erased, deleted, callbacks)
