"""Join limits in the services: the per-address cap under races, quick cancels
that leave no history, proof of work for a queue under pressure, and the
liveness check of long waiters (the repair pass asks, and ends the unanswered).
Run on SQLite and on PostgreSQL."""

import base64
import json
import uuid
from datetime import timedelta

import altcha
import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from consult import errors, proofofwork, services
from consult.events import QueueChanged, SendFrame
from consult.models import Consultation, Ticket
from consult.services.tickets import (
    NOT_THERE_REASON,
    QUICK_CANCELS,
    still_there_key,
    under_pressure,
)
from tests.consult.test_races import race
from tests.factories import join, make_consultant

pytestmark = pytest.mark.django_db(transaction=True)

ADDRESS = "203.0.113.40"


def test_forty_joins_racing_from_one_address_queue_at_most_the_cap(settings):
    """The check and the insert are one step: however the joins interleave,
    across queues, the address never holds more than its cap."""
    settings.CONSULT_MAX_WAITING_PER_ADDRESS = 5
    queues = [make_consultant(slug, max_queue=50) for slug in ("ada", "grace")]

    def attempt(i):
        join(queues[i % 2], f"racer-{i}", address=ADDRESS)
        return "queued"

    outcomes = race(40, attempt)

    assert outcomes.count("queued") == 5, outcomes
    assert outcomes.count("too_many_from_address") == 35
    assert Ticket.objects.filter(caller_address=ADDRESS, state="waiting").count() == 5


def quick_cancels() -> float:
    return QUICK_CANCELS._value.get()


def test_a_cancel_within_seconds_of_joining_writes_no_history(consultant, settings):
    settings.CONSULT_QUICK_CANCEL_SECONDS = 10
    before = quick_cancels()
    ticket, _ = join(consultant, "c1", address=ADDRESS)

    result = services.ticket_cancel(channel="c1")

    assert result.events == [QueueChanged(consultant.id)]
    assert not Consultation.objects.exists()
    assert Ticket.objects.get(pk=ticket.pk).state == "ended"
    assert quick_cancels() == before + 1
    scrape = Client().get("/metrics").content.decode()
    assert f"consult_quick_cancels_total {before + 1}" in scrape
    # The address is free again at once.
    assert Ticket.objects.filter(caller_address=ADDRESS, state="waiting").count() == 0


def test_a_cancel_after_a_real_wait_keeps_its_history(consultant, settings):
    settings.CONSULT_QUICK_CANCEL_SECONDS = 10
    before = quick_cancels()
    ticket, _ = join(consultant, "c1")
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=timezone.now() - timedelta(seconds=11)
    )

    services.ticket_cancel(channel="c1")

    assert Consultation.objects.get().outcome == "cancelled"
    assert quick_cancels() == before


def fill(consultant, per_address: dict[str, int]) -> None:
    for address, count in per_address.items():
        for _ in range(count):
            join(consultant, f"{address}-{uuid.uuid4().hex}", address=address)


def test_a_queue_is_under_pressure_when_few_addresses_hold_its_share(settings):
    settings.CONSULT_MAX_WAITING_PER_ADDRESS = 10
    settings.CONSULT_PRESSURE_ADDRESSES = 2
    settings.CONSULT_PRESSURE_SHARE = 0.5
    consultant = make_consultant("ada", max_queue=10)
    # Many callers from many networks: no pressure, however full.
    fill(consultant, {f"198.51.100.{i}": 1 for i in range(8)})
    assert not under_pressure(consultant)
    other = make_consultant("grace", max_queue=10)
    fill(other, {"203.0.113.1": 3, "203.0.113.2": 1})
    assert not under_pressure(other)
    # The two busiest addresses hold 5 of 10 places.
    fill(other, {"203.0.113.2": 1})
    assert under_pressure(other)


def solve(challenge: dict) -> str:
    """What ALTCHA's widget hands back: the solution as base64 JSON."""
    solution = altcha.solve_challenge(
        challenge["challenge"],
        challenge["salt"],
        challenge["algorithm"],
        challenge["maxNumber"],
    )
    assert solution is not None
    payload = {**challenge, "number": solution.number}
    del payload["maxNumber"]
    return base64.b64encode(json.dumps(payload).encode()).decode()


@pytest.fixture
def pressed(settings):
    """A queue held half by four addresses: under pressure."""
    cache.clear()
    settings.CONSULT_JOIN_CHALLENGE_MAX_NUMBER = 2000
    consultant = make_consultant("ada", max_queue=8)
    fill(consultant, {f"203.0.113.{i}": 1 for i in range(4)})
    assert under_pressure(consultant)
    return consultant


def test_a_join_to_a_queue_under_pressure_needs_a_solved_challenge(pressed):
    with pytest.raises(errors.ChallengeRequired) as required:
        join(pressed, "late", address="198.51.100.7")
    assert required.value.code == "challenge_required"
    challenge = required.value.details["challenge"]
    assert set(challenge) == {
        "algorithm",
        "challenge",
        "maxNumber",
        "salt",
        "signature",
    }
    assert challenge["maxNumber"] == 2000

    ticket, _ = join(pressed, "late", address="198.51.100.7", proof=solve(challenge))

    assert ticket.state == "waiting"


def test_a_wrong_replayed_or_forged_solution_is_refused_with_a_new_challenge(pressed):
    with pytest.raises(errors.ChallengeRequired) as required:
        join(pressed, "late")
    good = solve(required.value.details["challenge"])
    join(pressed, "late", proof=good)

    forged_key = altcha.create_challenge(
        altcha.ChallengeOptions(hmac_key="not-ours", max_number=50)
    )
    forged = solve(forged_key.to_dict())
    payload = json.loads(base64.b64decode(good))
    wrong = base64.b64encode(
        json.dumps({**payload, "number": payload["number"] + 1}).encode()
    ).decode()
    for bad in (good, forged, wrong, "bm90IGpzb24="):
        with pytest.raises(errors.ChallengeFailed) as failed:
            join(pressed, "again", proof=bad)
        assert failed.value.code == "challenge_failed"
        assert failed.value.details["challenge"]["signature"]
    assert not Ticket.objects.filter(caller_channel="again").exists()


def test_an_expired_solution_is_refused(pressed, settings):
    settings.ALTCHA_CHALLENGE_EXPIRE = -1000  # expired a second ago
    stale = proofofwork.challenge()
    assert not proofofwork.redeem(solve(stale))


def test_without_pressure_no_challenge_is_asked(consultant):
    ticket, _ = join(consultant, "c1", address=ADDRESS)
    assert ticket.state == "waiting"


# --- the liveness check ------------------------------------------------------


@pytest.fixture
def liveness(consultant, settings):
    """Small timings, and a desk open (a consultant without one goes offline
    in a repair pass run far enough ahead)."""
    cache.clear()
    services.desk_opened(consultant_id=consultant.id, channel="desk-1", process="p")
    settings.CONSULT_STILL_THERE_AFTER_SECONDS = 900
    settings.CONSULT_STILL_THERE_ANSWER_SECONDS = 60


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def still_there(channel: str, within: int = 60) -> SendFrame:
    return SendFrame(channel, {"type": "still_there", "answer_within_seconds": within})


def test_a_long_waiter_is_asked_once_then_loses_the_place_without_an_answer(
    consultant, liveness
):
    ticket, _ = join(consultant, "c1")
    join(consultant, "c2")
    assert services.sweep(now=later(899)).events == []

    asked = services.sweep(now=later(901)).events

    assert still_there("c1") in asked and still_there("c2") in asked
    assert services.sweep(now=later(950)).events == []  # asked once
    expired = services.sweep(now=later(962)).events
    assert SendFrame("c1", {"type": "expired", "reason": "no_answer"}) in expired
    assert QueueChanged(consultant.id) in expired
    history = Consultation.objects.get(ticket=ticket)
    assert (history.outcome, history.ended_by, history.end_reason) == (
        "abandoned",
        "system",
        NOT_THERE_REASON,
    )
    assert not Ticket.objects.filter(state="waiting").exists()


def test_an_answer_keeps_the_place_and_the_next_question_comes_as_late(
    consultant, liveness, settings
):
    settings.CONSULT_STILL_THERE_AFTER_SECONDS = 30
    ticket, _ = join(consultant, "c1")
    assert services.sweep(now=later(31)).events == [still_there("c1")]

    assert services.ticket_still_here(channel="c1").events == []

    assert Ticket.objects.get(pk=ticket.pk).still_there_asked_at is None
    # Not asked again at once, nor ended when the first question would have expired.
    assert services.sweep(now=later(31)).events == []
    assert services.sweep(now=later(95)).events == []
    assert Ticket.objects.get(pk=ticket.pk).state == "waiting"
    # The answer's mark lasts as long as the wait before a question (30 s).
    assert cache.get(still_there_key(ticket.pk))
    cache.delete(still_there_key(ticket.pk))
    assert services.sweep(now=later(31)).events == [still_there("c1")]


def test_here_without_a_question_changes_nothing_and_needs_a_ticket(
    consultant, liveness
):
    join(consultant, "c1")
    services.ticket_still_here(channel="c1")
    assert services.sweep(now=later(901)).events == [still_there("c1")]
    with pytest.raises(errors.NotQueued):
        services.ticket_still_here(channel="nobody")


def test_a_caller_away_is_not_asked_and_a_resumed_one_is_asked_again(
    consultant, liveness
):
    ticket, queued = join(consultant, "c1")
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=timezone.now() - timedelta(seconds=901)
    )
    services.caller_dropped(channel="c1")
    assert services.sweep().events == []

    services.ticket_resume(token=queued["token"], channel="c2", process="p")
    assert services.sweep().events == [still_there("c2")]
    # A reload while the question is open: the new socket is told the time left.
    services.caller_dropped(channel="c2")
    back = services.ticket_resume(token=queued["token"], channel="c3", process="p")
    assert 55 <= back.value.answer_within <= 60


def test_a_check_set_to_zero_never_asks(consultant, liveness, settings):
    settings.CONSULT_STILL_THERE_AFTER_SECONDS = 0
    join(consultant, "c1")
    assert services.sweep(now=later(10_000)).events == []
