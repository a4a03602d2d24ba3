"""The wait-range model (consult/waits.py) on hand-built histories and live input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consult import selectors
from consult.models import Consultation
from consult.waits import NOW, WaitRange, wait_range
from tests.factories import join

SPREAD = [60.0, 120.0, 180.0, 240.0, 300.0]


def test_place_one_with_the_consultant_free_is_any_moment_now_even_without_history():
    assert wait_range(handling_seconds=[], position=1, elapsed_seconds=None) == NOW


def test_too_little_history_is_not_known_rather_than_a_made_up_default():
    assert (
        wait_range(handling_seconds=[300, 300], position=2, elapsed_seconds=None)
        is None
    )
    assert wait_range(handling_seconds=[], position=1, elapsed_seconds=10) is None


def test_one_whole_call_ahead_gives_the_quartiles_of_the_history():
    assert wait_range(
        handling_seconds=SPREAD, position=2, elapsed_seconds=None
    ) == WaitRange(120, 240)


def test_the_call_in_progress_counts_only_what_is_left_of_calls_that_lasted_longer():
    # Calls longer than 150 s leave 30, 90 and 150 s: quartiles 60 and 120.
    assert wait_range(
        handling_seconds=SPREAD, position=1, elapsed_seconds=150
    ) == WaitRange(60, 120)


def test_a_call_longer_than_any_before_is_not_any_moment_now():
    """Nothing says when such a call ends: its rest counts as a whole call."""
    assert wait_range(
        handling_seconds=SPREAD, position=1, elapsed_seconds=400
    ) == WaitRange(120, 240)


def test_several_terms_add_up_by_the_normal_approximation():
    # Two whole calls: mean 360 s, variance 2 x 7200 s², so 360 ± 0.6745 x 120.
    assert wait_range(
        handling_seconds=SPREAD, position=3, elapsed_seconds=None
    ) == WaitRange(279, 441)
    assert wait_range(
        handling_seconds=[300, 300, 300], position=3, elapsed_seconds=None
    ) == WaitRange(600, 600)


@pytest.mark.parametrize(
    ("position", "elapsed", "history"),
    [(0, None, SPREAD), (1, -1, SPREAD), (2, None, [60, -5, 60])],
)
def test_nonsense_input_is_refused(position, elapsed, history):
    with pytest.raises(ValueError):
        wait_range(handling_seconds=history, position=position, elapsed_seconds=elapsed)


def _call(consultant, *, accepted, length=None):
    ended = None if length is None else accepted + timedelta(seconds=length)
    return Consultation.objects.create(
        consultant=consultant,
        caller_name="x",
        requested_at=accepted - timedelta(minutes=1),
        accepted_at=accepted,
        ended_at=ended,
        outcome="active" if length is None else "completed",
    )


def test_the_live_estimate_uses_the_history_and_the_call_in_progress(consultant):
    now = timezone.now()
    for minutes in (2, 4, 6):
        _call(consultant, accepted=now - timedelta(hours=1), length=minutes * 60)
    _call(consultant, accepted=now - timedelta(minutes=3))
    estimate = selectors.wait_estimator(consultant.id, now=now)
    # One whole call (mean 240 s, variance 9600 s²) and the rest of the current
    # one (60 or 180 s: mean 120 s, variance 3600 s²): 360 ± 0.6745 x 114.9.
    assert estimate(2) == (360, WaitRange(282, 438))


def test_the_queued_frame_carries_the_range(consultant):
    _, queued = join(consultant, "c1")
    assert queued["wait_range"] == {"low_seconds": 0, "high_seconds": 0}
    assert queued["eta_seconds"] == 0
    _, second = join(consultant, "c2")
    assert second["wait_range"] is None and second["eta_seconds"] is None


def test_away_means_no_estimate(consultant):
    consultant.presence = "away"
    consultant.save()
    _, queued = join(consultant, "c1")
    assert queued["wait_range"] is None and queued["eta_seconds"] is None
