"""The live board's read: every consultant with status, queue and call, in a
few queries, for the board's one-second poll (consult/board_views.py)."""

from datetime import datetime

from django.utils import timezone

from .models import Consultant, Consultation, Ticket
from .selectors import consultant_status, consultants_with_live_state


def _call_media(call: Consultation) -> str:
    """connecting (no media yet), reconnecting (a party's socket is away), or
    connected."""
    if call.consultant_dropped_at is not None or (
        call.ticket is not None and call.ticket.dropped_at is not None
    ):
        return "reconnecting"
    return "connected" if call.media_connected_at else "connecting"


def board_state(*, now: datetime | None = None) -> list[dict]:
    """Every consultant, by name: {slug, name, status, call, queue}.

    `call` is None or {consultation, caller, seconds (since the accept),
    media, candidate ("" until measured), relayed, rtt_ms}; `queue` is the
    waiting callers, next first: {ticket, name, waiting_seconds, connection
    ("connected" or "reconnecting"), connectivity (the pre-call check's class,
    "direct", "relay", "blocked" or "" unknown), came_from (a name or "")}.
    """
    now = now or timezone.now()
    consultants = list(consultants_with_live_state(Consultant.objects.serving()))
    waiting: dict[int, list[dict]] = {c.id: [] for c in consultants}
    for t in Ticket.objects.filter(state=Ticket.State.WAITING).select_related(
        "came_from"
    ):
        waiting.setdefault(t.consultant_id, []).append(
            {
                "ticket": str(t.id),
                "name": t.caller_name,
                "waiting_seconds": int((now - t.created_at).total_seconds()),
                "connection": "reconnecting" if t.dropped_at else "connected",
                "connectivity": t.connectivity,
                "came_from": t.came_from.name if t.came_from else "",
            }
        )
    calls = {
        call.consultant_id: call
        for call in Consultation.objects.filter(
            outcome=Consultation.Outcome.ACTIVE
        ).select_related("ticket", "quality")
    }
    board = []
    for c in consultants:
        call = calls.get(c.id)
        board.append(
            {
                "slug": c.slug,
                "name": c.name,
                "status": consultant_status(presence=c.presence, in_call=c.in_call),
                "call": _call_row(call, now) if call else None,
                "queue": waiting.get(c.id, []),
            }
        )
    return board


def _call_row(call: Consultation, now: datetime) -> dict:
    quality = getattr(call, "quality", None)
    return {
        "consultation": call.id,
        "caller": call.caller_name,
        "seconds": int((now - (call.accepted_at or now)).total_seconds()),
        "media": _call_media(call),
        "candidate": quality.caller_candidate if quality else "",
        "relayed": quality.relayed if quality else False,
        "rtt_ms": quality.rtt_median_ms if quality else None,
    }
