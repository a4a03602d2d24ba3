"""The history as CSV, streamed: one row per consultation, with the admin
changelist's filters applied, read from the database in chunks so that a
year of history never sits in memory (bench/export.py measures it).

Caller names, reasons and free text of refusals are not exported (personal
data stays in the admin); the caller's comment is, guarded against spreadsheet
formula injection.
"""

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.utils import timezone

from .quality_models import histogram_median

CHUNK = 2000
FIELDS = {
    "consultation": "id",
    "consultant": "consultant__slug",
    "requested_at": "requested_at",
    "accepted_at": "accepted_at",
    "media_connected_at": "media_connected_at",
    "ended_at": "ended_at",
    "outcome": "outcome",
    "ended_by": "ended_by",
    "audio_only": "audio_only",
    "accept_to_media_ms": "quality__accept_to_media_ms",
    "relayed": "quality__relayed",
    "caller_candidate": "quality__caller_candidate",
    "consultant_candidate": "quality__consultant_candidate",
    "rtt_histogram": "quality__rtt_histogram",
    "rtt_worst_ms": "quality__rtt_worst_ms",
    "loss_sum_pct": "quality__loss_sum_pct",
    "loss_samples": "quality__loss_samples",
    "loss_worst_pct": "quality__loss_worst_pct",
    "jitter_worst_ms": "quality__jitter_worst_ms",
    "in_kbps_sum": "quality__in_kbps_sum",
    "out_kbps_sum": "quality__out_kbps_sum",
    "kbps_samples": "quality__kbps_samples",
    "freezes": "quality__freezes",
    "rating": "feedback__rating",
    "comment": "feedback__comment",
    "flag": "feedback__flag",
}
HEADER = [
    "consultation",
    "consultant",
    "requested_at",
    "accepted_at",
    "media_connected_at",
    "ended_at",
    "outcome",
    "ended_by",
    "audio_only",
    "wait_seconds",
    "talk_seconds",
    "accept_to_media_ms",
    "measured",
    "relayed",
    "caller_candidate",
    "consultant_candidate",
    "rtt_median_ms",
    "rtt_worst_ms",
    "loss_mean_pct",
    "loss_worst_pct",
    "jitter_worst_ms",
    "in_kbps_mean",
    "out_kbps_mean",
    "freezes",
    "rating",
    "comment",
    "flag",
]
# A cell a spreadsheet would run as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file-like object whose write() hands the line back (Django's CSV recipe)."""

    def write(self, value: str) -> str:
        return value


def _time(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _seconds(later: datetime | None, earlier: datetime | None) -> str:
    if later is None or earlier is None:
        return ""
    return f"{(later - earlier).total_seconds():.0f}"


def _mean(total: float | None, count: int | None) -> str:
    return f"{total / count:.1f}" if count else ""


def _text(value: str | None) -> str:
    value = value or ""
    return "'" + value if value.startswith(FORMULA_START) else value


def _blank(value) -> str:
    return "" if value is None else str(value)


def row(r: dict) -> list[str]:
    """One CSV row from one consultation's `FIELDS`, by their keys."""
    measured = r["relayed"] is not None
    median = histogram_median(r["rtt_histogram"] or {}) if measured else None
    end = r["accepted_at"] or r["ended_at"]
    return [
        str(r["consultation"]),
        r["consultant"],
        _time(r["requested_at"]),
        _time(r["accepted_at"]),
        _time(r["media_connected_at"]),
        _time(r["ended_at"]),
        r["outcome"],
        r["ended_by"],
        "1" if r["audio_only"] else "0",
        _seconds(end, r["requested_at"]),
        _seconds(r["ended_at"], r["media_connected_at"]),
        _blank(r["accept_to_media_ms"]),
        "1" if measured else "0",
        ("1" if r["relayed"] else "0") if measured else "",
        r["caller_candidate"] or "",
        r["consultant_candidate"] or "",
        _blank(median),
        _blank(r["rtt_worst_ms"]),
        _mean(r["loss_sum_pct"], r["loss_samples"]),
        _blank(r["loss_worst_pct"]),
        _blank(r["jitter_worst_ms"]),
        _mean(r["in_kbps_sum"], r["kbps_samples"]),
        _mean(r["out_kbps_sum"], r["kbps_samples"]),
        _blank(r["freezes"]),
        _blank(r["rating"]),
        _text(r["comment"]),
        r["flag"] or "",
    ]


def csv_lines(consultations: QuerySet) -> Iterator[str]:
    """The header, then one CSV line per consultation, read `CHUNK` rows at a
    time (a server-side cursor on PostgreSQL)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    names = list(FIELDS)
    rows: Iterable[tuple] = (
        consultations.order_by("requested_at", "id")
        .values_list(*FIELDS.values())
        .iterator(chunk_size=CHUNK)
    )
    for values in rows:
        yield writer.writerow(row(dict(zip(names, values, strict=True))))


def export_view(modeladmin, request):
    """GET: the changelist's consultations (its filters, search and date
    drill-down applied) as a streamed CSV download."""
    if not modeladmin.has_view_permission(request):
        raise PermissionDenied
    try:
        changelist = modeladmin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        return HttpResponseBadRequest("Unknown filter.")
    consultations = changelist.get_queryset(request)
    response = StreamingHttpResponse(
        csv_lines(consultations), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="consultations-{stamp}.csv"'
    )
    return response
