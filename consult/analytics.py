"""The operations figures: reads of the history for a period and one consultant
or all, each computed once here for the analytics page, the export's
neighbours and the tests (docs/operations.md says what each one means).

Percentiles are nearest-rank: p50 of [1, 2, 3, 4] is 2, p90 of ten values
is the ninth smallest; no interpolation, so every figure is a value that was
actually seen.
"""

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from .models import CallFeedback, CallQuality, Consultation

Outcome = Consultation.Outcome
# Callers who left before being served: of their own accord, or gone without
# a word (their socket's grace ran out, or they did not answer whether they
# were still there).
LEFT = (Outcome.CANCELLED, Outcome.ABANDONED)
# Bucket edges (seconds) of how long a caller had waited when they gave up.
ABANDON_EDGES = (30, 60, 120, 300, 600)
# Bucket edges (seconds) of talk time, and (ms) of accept-to-media.
TALK_EDGES = (60, 300, 600, 1200, 1800)
MEDIA_EDGES = (500, 1000, 2000, 5000, 10000)
TOP_REASONS = 10


@dataclass(frozen=True)
class Spread:
    """A distribution in a few figures: count, p50, p90, max (None when empty)."""

    count: int
    p50: float | None
    p90: float | None
    max: float | None


@dataclass(frozen=True)
class Period:
    """What to read: requests made in [start, end), of one consultant or all."""

    start: datetime
    end: datetime
    consultant_id: int | None = None


@dataclass(frozen=True)
class Figures:
    """Every figure of the analytics page for one `Period`."""

    requests: int
    outcomes: dict[str, int]
    wait: Spread
    wait_trend: list[tuple[datetime, Spread]]
    abandoned: int
    abandoned_by_wait: list[tuple[str, int]]
    refused: int
    refusal_reasons: list[tuple[str, int]]
    talk: Spread
    talk_buckets: list[tuple[str, int]]
    accepted: int
    failed: int
    accept_to_media: Spread
    media_buckets: list[tuple[str, int]]
    measured: int
    relayed: int
    quality_by_rating: list[dict] = field(default_factory=list)


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank `p`th percentile (0 < p <= 100) of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: list[float]) -> Spread:
    if not values:
        return Spread(0, None, None, None)
    return Spread(
        len(values), percentile(values, 50), percentile(values, 90), max(values)
    )


def bucket_label(value: float, edges: tuple[int, ...], unit: str) -> str:
    """The bucket of `value` among `edges`: "<30s", "30-60s", ..., ">=600s"."""
    if value < edges[0]:
        return f"<{edges[0]}{unit}"
    for low, high in itertools.pairwise(edges):
        if value < high:
            return f"{low}-{high}{unit}"
    return f">={edges[-1]}{unit}"


def buckets(values: list[float], edges: tuple[int, ...], unit: str) -> list:
    """(label, count) of every bucket, in order, empty ones included."""
    labels = [bucket_label(edges[0] - 1, edges, unit)]
    labels += [bucket_label(e, edges, unit) for e in edges]
    counts = Counter(bucket_label(v, edges, unit) for v in values)
    return [(label, counts.get(label, 0)) for label in labels]


def history(period: Period) -> QuerySet[Consultation]:
    """The ended consultations requested within the period (of its consultant)."""
    calls = Consultation.objects.filter(
        requested_at__gte=period.start, requested_at__lt=period.end
    ).exclude(outcome=Outcome.ACTIVE)
    if period.consultant_id is not None:
        calls = calls.filter(consultant_id=period.consultant_id)
    return calls


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def trend_start(at: datetime, by: str) -> datetime:
    """The start of the hour or day (`by`) of `at`, in the current time zone."""
    local = timezone.localtime(at).replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0) if by == "day" else local


def figures(period: Period, *, by: str = "day") -> Figures:
    """Every figure for `period`; the wait trend per hour or day (`by`)."""
    rows = list(
        history(period).values_list(
            "requested_at",
            "accepted_at",
            "media_connected_at",
            "ended_at",
            "outcome",
            "end_reason",
        )
    )
    waits, left_after, talks, media = [], [], [], []
    trend: dict[datetime, list[float]] = {}
    outcomes: Counter = Counter()
    reasons: Counter = Counter()
    for requested, accepted, connected, ended, outcome, reason in rows:
        outcomes[outcome] += 1
        if accepted is not None:
            wait = _seconds(accepted, requested)
            waits.append(wait)
            trend.setdefault(trend_start(requested, by), []).append(wait)
        if outcome in LEFT:
            left_after.append(_seconds(ended, requested))
        if outcome == Outcome.REFUSED:
            reasons[reason or ""] += 1
        if connected is not None and accepted is not None:
            media.append(_seconds(connected, accepted) * 1000)
            talks.append(_seconds(ended, connected))
    quality = CallQuality.objects.filter(consultation__in=history(period))
    return Figures(
        requests=len(rows),
        outcomes=dict(outcomes),
        wait=spread(waits),
        wait_trend=[(start, spread(trend[start])) for start in sorted(trend)],
        abandoned=len(left_after),
        abandoned_by_wait=buckets(left_after, ABANDON_EDGES, "s"),
        refused=outcomes[Outcome.REFUSED],
        refusal_reasons=reasons.most_common(TOP_REASONS),
        talk=spread(talks),
        talk_buckets=buckets(talks, TALK_EDGES, "s"),
        accepted=len(waits),
        failed=outcomes[Outcome.FAILED],
        accept_to_media=spread(media),
        media_buckets=buckets(media, MEDIA_EDGES, "ms"),
        measured=quality.count(),
        relayed=quality.filter(relayed=True).count(),
        quality_by_rating=quality_by_rating(period),
    )


def quality_by_rating(period: Period) -> list[dict]:
    """Per rating 1-5: how many rated calls, and the median of their median
    RTT (ms), their mean loss (%) and mean inbound bitrate (kbit/s), over the
    rated calls that were measured."""
    rated = CallFeedback.objects.filter(
        consultation__in=history(period), rating__isnull=False
    ).select_related("consultation__quality")
    by_rating: dict[int, list] = {r: [] for r in range(1, 6)}
    counts: Counter = Counter()
    for feedback in rated:
        counts[feedback.rating] += 1
        quality = getattr(feedback.consultation, "quality", None)
        if quality is not None:
            by_rating[feedback.rating].append(quality)
    rows = []
    for rating, measured in by_rating.items():
        rtts = [q.rtt_median_ms for q in measured if q.rtt_median_ms is not None]
        losses = [q.loss_mean_pct for q in measured if q.loss_mean_pct is not None]
        rates = [q.in_kbps_mean for q in measured if q.in_kbps_mean is not None]
        rows.append(
            {
                "rating": rating,
                "calls": counts[rating],
                "rtt_ms": percentile(rtts, 50),
                "loss_pct": sum(losses) / len(losses) if losses else None,
                "in_kbps": sum(rates) / len(rates) if rates else None,
            }
        )
    return rows
