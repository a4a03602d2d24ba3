"""The operations figures against a hand-built history, to the exact number."""

from datetime import UTC, datetime, timedelta

import pytest

from consult.analytics import Period, Spread, figures, percentile, spread
from consult.models import CallFeedback, CallQuality, Consultation
from tests.factories import make_consultant

pytestmark = pytest.mark.django_db

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def row(consultant, requested, outcome, *, wait=None, media=None, ended, **fields):
    """A consultation requested at `requested`, accepted `wait` s later, media
    `media` s after the accept, ended `ended` s after the request."""
    accepted = requested + wait * S if wait is not None else None
    return Consultation.objects.create(
        consultant=consultant,
        caller_name="Caller",
        requested_at=requested,
        accepted_at=accepted,
        media_connected_at=accepted + media * S if media is not None else None,
        ended_at=requested + ended * S,
        outcome=outcome,
        **fields,
    )


@pytest.fixture
def history():
    ada, bea = make_consultant("ada"), make_consultant("bea")
    hour = timedelta(hours=1)
    first = row(ada, BASE, "completed", wait=10, media=1, ended=71)
    second = row(
        ada, BASE + 5 * 60 * S, "completed", wait=30, media=2, ended=30 + 2 + 300
    )
    third = row(ada, BASE + hour, "completed", wait=50, media=0.5, ended=170.5)
    row(ada, BASE + hour + 60 * S, "failed", wait=20, ended=40)
    row(ada, BASE + 2 * hour, "cancelled", ended=45)
    row(ada, BASE + 2 * hour, "abandoned", ended=700)
    row(ada, BASE + 2 * hour, "cancelled", ended=5)
    for reason in ("Out of scope", "Out of scope", "Call back tomorrow"):
        row(ada, BASE + 3 * hour, "refused", ended=15, end_reason=reason)
    # Outside the period, and another consultant's.
    row(ada, BASE - timedelta(days=1), "completed", wait=999, media=1, ended=2000)
    row(bea, BASE, "completed", wait=400, media=1, ended=500)
    CallQuality.objects.create(
        consultation=first,
        rtt_histogram={"40": 3, "50": 1},
        loss_sum_pct=2,
        loss_samples=2,
        in_kbps_sum=2000,
        kbps_samples=2,
    )
    CallQuality.objects.create(
        consultation=second,
        relayed=True,
        rtt_histogram={"120": 2},
        loss_sum_pct=6,
        loss_samples=2,
        in_kbps_sum=500,
        kbps_samples=1,
    )
    for call, rating in ((first, 5), (second, 2), (third, 5)):
        CallFeedback.objects.create(consultation=call, rating=rating)
    return ada, bea


def ada_day(ada) -> Period:
    midnight = BASE.replace(hour=0)
    return Period(midnight, midnight + timedelta(days=1), ada.id)


def test_percentiles_are_nearest_rank():
    assert percentile([4, 1, 3, 2], 50) == 2
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile([7], 90) == 7
    assert percentile([], 50) is None
    assert spread([]) == Spread(0, None, None, None)


def test_waits_outcomes_and_trend_by_hour(history):
    ada, _ = history
    got = figures(ada_day(ada), by="hour")
    assert got.requests == 10
    assert got.outcomes == {
        "completed": 3,
        "failed": 1,
        "cancelled": 2,
        "abandoned": 1,
        "refused": 3,
    }
    assert got.wait == Spread(4, 20, 50, 50)
    assert got.wait_trend == [
        (BASE, Spread(2, 10, 30, 30)),
        (BASE + timedelta(hours=1), Spread(2, 20, 50, 50)),
    ]
    by_day = figures(ada_day(ada), by="day")
    assert by_day.wait_trend == [(BASE.replace(hour=0), Spread(4, 20, 50, 50))]


def test_abandonment_by_waited_time_and_refusal_reasons(history):
    ada, _ = history
    got = figures(ada_day(ada))
    assert got.abandoned == 3
    assert got.abandoned_by_wait == [
        ("<30s", 1),
        ("30-60s", 1),
        ("60-120s", 0),
        ("120-300s", 0),
        ("300-600s", 0),
        (">=600s", 1),
    ]
    assert got.refused == 3
    assert got.refusal_reasons == [("Out of scope", 2), ("Call back tomorrow", 1)]


def test_talk_time_failures_and_accept_to_media(history):
    ada, _ = history
    got = figures(ada_day(ada))
    assert got.talk == Spread(3, 120, 300, 300)
    assert dict(got.talk_buckets) == {
        "<60s": 0,
        "60-300s": 2,
        "300-600s": 1,
        "600-1200s": 0,
        "1200-1800s": 0,
        ">=1800s": 0,
    }
    assert (got.accepted, got.failed) == (4, 1)
    assert got.accept_to_media == Spread(3, 1000, 2000, 2000)
    assert dict(got.media_buckets)["500-1000ms"] == 1
    assert dict(got.media_buckets)["1000-2000ms"] == 1
    assert dict(got.media_buckets)["2000-5000ms"] == 1


def test_relayed_share_and_quality_by_rating(history):
    ada, _ = history
    got = figures(ada_day(ada))
    assert (got.measured, got.relayed) == (2, 1)
    rows = {r["rating"]: r for r in got.quality_by_rating}
    assert rows[5] == {
        "rating": 5,
        "calls": 2,
        "rtt_ms": 40,
        "loss_pct": 1.0,
        "in_kbps": 1000.0,
    }
    assert rows[2] == {
        "rating": 2,
        "calls": 1,
        "rtt_ms": 120,
        "loss_pct": 3.0,
        "in_kbps": 500.0,
    }
    assert rows[1] == {
        "rating": 1,
        "calls": 0,
        "rtt_ms": None,
        "loss_pct": None,
        "in_kbps": None,
    }


def test_all_consultants_take_in_everyones_calls_of_the_period(history):
    ada, _ = history
    day = ada_day(ada)
    everyone = figures(Period(day.start, day.end))
    assert everyone.requests == 11
    assert everyone.wait == Spread(5, 30, 400, 400)
