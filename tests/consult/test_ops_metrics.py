"""/metrics carries the operations figures that fit Prometheus, from the history."""

from datetime import UTC, datetime, timedelta

import pytest

from consult.models import Consultation
from tests.factories import make_consultant

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ended(consultant, outcome, *, wait=None, media=None):
    accepted = AT + timedelta(seconds=wait) if wait is not None else None
    Consultation.objects.create(
        consultant=consultant,
        caller_name="C",
        requested_at=AT,
        accepted_at=accepted,
        media_connected_at=accepted + timedelta(seconds=media) if media else None,
        ended_at=AT + timedelta(hours=1),
        outcome=outcome,
    )


def test_metrics_count_outcomes_and_histogram_waits_and_accept_to_media(client):
    ada = make_consultant("ada")
    ended(ada, "completed", wait=5, media=0.3)
    ended(ada, "completed", wait=20, media=1.5)
    ended(ada, "failed", wait=45)
    ended(ada, "cancelled")

    lines = client.get("/metrics").content.decode().splitlines()

    assert 'consult_consultations_ended_total{outcome="completed"} 2.0' in lines
    assert 'consult_consultations_ended_total{outcome="failed"} 1.0' in lines
    assert 'consult_consultations_ended_total{outcome="cancelled"} 1.0' in lines
    assert 'consult_wait_seconds_bucket{le="10.0"} 1.0' in lines
    assert 'consult_wait_seconds_bucket{le="30.0"} 2.0' in lines
    assert 'consult_wait_seconds_bucket{le="60.0"} 3.0' in lines
    assert 'consult_wait_seconds_bucket{le="+Inf"} 3.0' in lines
    assert "consult_wait_seconds_count 3.0" in lines
    assert "consult_wait_seconds_sum 70.0" in lines
    assert 'consult_accept_to_media_seconds_bucket{le="0.5"} 1.0' in lines
    assert 'consult_accept_to_media_seconds_bucket{le="2.0"} 2.0' in lines
    assert "consult_accept_to_media_seconds_count 2.0" in lines
    assert "consult_accept_to_media_seconds_sum 1.8" in lines
