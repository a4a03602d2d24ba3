"""Reads of the queue: presence, queue lists, positions and wait estimates."""

from collections.abc import Callable
from datetime import datetime

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from .models import Callback, Consultant, Consultation, Presence, Ticket
from .waits import WaitRange, wait_range

Waiting = Ticket.State.WAITING
ACTIVE = Consultation.Outcome.ACTIVE
HISTORY_FOR_ESTIMATE = 20


def consultant_status(*, presence: str, in_call: bool) -> str:
    """The contract's status: offline, else busy while in a call, else presence."""
    if presence == Presence.OFFLINE:
        return "offline"
    return "busy" if in_call else presence


def consultants_with_live_state(
    consultants: QuerySet[Consultant] | None = None,
) -> QuerySet[Consultant]:
    """Consultants annotated with `queue_length` (waiting callers) and `in_call`.

    The one read of live state that the lobby, the admin and /metrics share.
    """
    if consultants is None:
        consultants = Consultant.objects.all()
    # Grouped queries drop Meta.ordering: name the order again.
    return consultants.order_by("name", "pk").annotate(
        queue_length=Count("tickets", filter=Q(tickets__state=Waiting)),
        in_call=Exists(
            Consultation.objects.filter(consultant=OuterRef("pk"), outcome=ACTIVE)
        ),
    )


def consultant_presence(consultant: Consultant) -> str:
    """One consultant's status as the contract names it."""
    in_call = consultant.consultations.filter(outcome=ACTIVE).exists()
    return consultant_status(presence=consultant.presence, in_call=in_call)


def consultant_for_user(user) -> Consultant | None:
    """The active consultant profile of a logged-in, active user, if any."""
    return Consultant.objects.serving().filter(user=user).first()


def desk_state(consultant: Consultant) -> tuple[str, dict]:
    """(status, the `queue` frame's fields) as a desk's opening frames show them."""
    consultant.refresh_from_db(fields=["presence"])
    return consultant_presence(consultant), desk_queue(consultant.id)


def desk_queue(consultant_id: int) -> dict:
    """The `queue` frame's fields: `callers` waiting, `callbacks` asked for."""
    return {
        "callers": queue_for(consultant_id),
        "callbacks": callbacks_for(consultant_id),
    }


def callbacks_for(consultant_id: int, *, now: datetime | None = None) -> list[dict]:
    """Callers who asked to be called back, oldest first, as the desk shows them."""
    now = now or timezone.now()
    return [
        {
            "callback": c.id,
            "name": c.caller_name,
            "contact": c.contact,
            "reason": c.reason,
            "waiting_seconds": int((now - c.created_at).total_seconds()),
        }
        for c in Callback.objects.filter(consultant_id=consultant_id)
    ]


def consultants_for_lobby(*, with_title: bool = False) -> list[dict]:
    """Every active consultant as the contract's CONSULTANT object.

    The lobby page also shows each title; the protocol's object has none.
    """
    rows = consultants_with_live_state(Consultant.objects.serving())
    consultants = []
    for c in rows:
        item = {
            "slug": c.slug,
            "name": c.name,
            "status": consultant_status(presence=c.presence, in_call=c.in_call),
            "queue_length": c.queue_length,
        }
        if with_title:
            item["title"] = c.title
        consultants.append(item)
    return consultants


def queue_for(consultant_id: int, *, now: datetime | None = None) -> list[dict]:
    """The consultant's waiting callers, next first, as the desk shows them.

    `came_from` is the colleague a caller moved or was transferred from
    (`{slug, name}` or None), with that colleague's `note`.
    """
    now = now or timezone.now()
    tickets = (
        Ticket.objects.filter(consultant_id=consultant_id, state=Waiting)
        .select_related("came_from")
        .only(
            "id",
            "caller_name",
            "reason",
            "audio_only",
            "connectivity",
            "created_at",
            "dropped_at",
            "transfer_note",
            "came_from__slug",
            "came_from__name",
        )
    )
    return [
        {
            "ticket": str(t.id),
            "name": t.caller_name,
            "reason": t.reason,
            "audio_only": t.audio_only,
            "connectivity": t.connectivity,
            "waiting_seconds": int((now - t.created_at).total_seconds()),
            "reconnecting": t.dropped_at is not None,
            "came_from": (
                {"slug": t.came_from.slug, "name": t.came_from.name}
                if t.came_from
                else None
            ),
            "note": t.transfer_note,
        }
        for t in tickets
    ]


def handling_seconds(
    consultant_id: int, *, now: datetime | None = None
) -> tuple[list[float], float | None]:
    """(lengths in seconds, accept to end, of the consultant's recent calls;
    seconds since the call in progress was accepted, or None), in one read.

    The last `HISTORY_FOR_ESTIMATE` calls that ended completed or disconnected:
    calls that failed to connect say nothing about how long a conversation
    takes. The call in progress (at most one) sorts first: its `ended_at` is
    null.
    """
    rows = (
        Consultation.objects.filter(
            consultant_id=consultant_id, accepted_at__isnull=False
        )
        .filter(
            Q(outcome=ACTIVE)
            | Q(
                ended_at__isnull=False,
                outcome__in=[
                    Consultation.Outcome.COMPLETED,
                    Consultation.Outcome.DISCONNECTED,
                ],
            )
        )
        .order_by(F("ended_at").desc(nulls_first=True))
        .values_list("accepted_at", "ended_at")[: HISTORY_FOR_ESTIMATE + 1]
    )
    history, elapsed = [], None
    for start, end in rows:
        if end is None:
            now = now or timezone.now()
            elapsed = max(0.0, (now - start).total_seconds())
        else:
            history.append((end - start).total_seconds())
    return history[:HISTORY_FOR_ESTIMATE], elapsed


Estimate = tuple[int | None, WaitRange | None]


def wait_estimator(
    consultant_id: int, *, now: datetime | None = None, presence: str | None = None
) -> Callable[[int], Estimate]:
    """A function from position (1 = next) to (eta_seconds, wait range).

    Both are None while the consultant is not `online` or without enough
    history (consult/waits.py); `eta_seconds` is the middle of the range.
    `presence` is the consultant's, when the caller has read it already.
    """
    if presence is None:
        presence = Consultant.objects.values_list("presence", flat=True).get(
            pk=consultant_id
        )
    if presence != Presence.ONLINE:
        return lambda position: (None, None)
    history, elapsed = handling_seconds(consultant_id, now=now)

    def estimate(position: int) -> Estimate:
        span = wait_range(
            handling_seconds=history, position=position, elapsed_seconds=elapsed
        )
        if span is None:
            return None, None
        return round((span.low_seconds + span.high_seconds) / 2), span

    return estimate


def waiting_state(consultant_id: int) -> tuple[list[str], Callable, str]:
    """What a queue's waiting callers are told: the order (ticket ids, next
    first), the estimate by position (`wait_estimator`) and the consultant's
    word to the queue ("" when none), with one read of the consultant."""
    presence, message = Consultant.objects.values_list("presence", "queue_message").get(
        pk=consultant_id
    )
    estimate = wait_estimator(consultant_id, presence=presence)
    return waiting_order(consultant_id), estimate, message


def waiting_order(consultant_id: int) -> list[str]:
    """Ids of the waiting tickets, next first (position = index + 1)."""
    ids = Ticket.objects.filter(consultant_id=consultant_id, state=Waiting).values_list(
        "id", flat=True
    )
    return [str(i) for i in ids]


def ticket_position(
    ticket: Ticket, *, ahead: int | None = None, presence: str | None = None
) -> tuple[int, Estimate]:
    """(position, (eta_seconds, wait range)) of a waiting ticket; 1 is next.

    `ahead` (the waiting tickets before it) and `presence` (its consultant's)
    when the caller has read them already: each saves a read.
    """
    if ahead is None:
        ahead = Ticket.objects.filter(
            Q(created_at__lt=ticket.created_at)
            | Q(created_at=ticket.created_at, id__lt=ticket.id),
            consultant_id=ticket.consultant_id,
            state=Waiting,
        ).count()
    position = ahead + 1
    return position, wait_estimator(ticket.consultant_id, presence=presence)(position)
