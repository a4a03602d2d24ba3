"""The connecting deadline, the retry at the head of the queue, the watchdog's
record and the connectivity class, through the services and the database."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consult import errors, selectors, services
from consult.events import SendFrame
from consult.models import Consultation, Ticket
from tests.factories import ANSWER, OFFER, accept, join

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def bounds(settings):
    settings.CONSULT_CONNECT_SECONDS = 10
    settings.CONSULT_CONNECT_RESCUE_SECONDS = 15


def answered_call(consultant, caller="c1", desk="desk-1") -> Consultation:
    join(consultant, caller, name="Bo")
    accept(consultant, desk)
    services.consultation_answer(channel=desk, answer=ANSWER)
    return Consultation.objects.get(outcome="active")


def frames_to(events, channel: str) -> list[dict]:
    return [
        e.frame for e in events if isinstance(e, SendFrame) and e.channel == channel
    ]


def test_call_without_media_past_the_deadline_fails_and_both_are_told(consultant):
    call = answered_call(consultant)
    soon = call.connected_at + timedelta(seconds=24)
    assert services.sweep(now=soon).events == []

    events = services.sweep(now=call.connected_at + timedelta(seconds=26)).events

    call.refresh_from_db()
    assert (call.outcome, call.ended_by, call.end_reason) == (
        "failed",
        "system",
        "failed",
    )
    [desk_frame] = frames_to(events, "desk-1")
    assert desk_frame == {"type": "hangup", "by": "system", "reason": "failed"}
    [caller_frame] = frames_to(events, "c1")
    assert caller_frame["reason"] == "failed" and caller_frame["move_token"]


def test_call_whose_media_flowed_is_not_failed_by_the_deadline(consultant):
    call = answered_call(consultant)
    services.consultation_media_connected(channel="c1", party="caller")

    services.sweep(now=call.connected_at + timedelta(minutes=5))

    call.refresh_from_db()
    assert call.outcome == "active"


def test_failed_caller_rejoins_the_same_queue_at_the_head(consultant):
    call = answered_call(consultant)
    join(consultant, "c2", name="Later")
    events = services.sweep(now=call.connected_at + timedelta(seconds=30)).events
    [frame] = frames_to(events, "c1")

    moved = services.ticket_move(
        move_token=frame["move_token"],
        consultant_slug=consultant.slug,
        caller_name="Bo",
        reason="",
        audio_only=True,
        offer=OFFER,
        channel="c1-retry",
        process="test",
    ).value

    assert moved.queued["position"] == 1
    names = [c["name"] for c in selectors.queue_for(consultant.id)]
    assert names == ["Bo", "Later"]
    assert moved.ticket.came_from is None
    # The retry is used up.
    with pytest.raises(errors.CannotMove):
        services.ticket_move(
            move_token=frame["move_token"],
            consultant_slug=consultant.slug,
            caller_name="Bo",
            reason="",
            audio_only=True,
            offer=OFFER,
            channel="c1-again",
            process="test",
        )


def test_completed_call_gives_no_retry_token_into_the_same_queue(consultant):
    answered_call(consultant)
    services.consultation_media_connected(channel="c1", party="caller")
    services.consultation_end(channel="c1", party="caller")
    ticket = Ticket.objects.get()
    token = services.shared.issue_move_token(ticket)

    with pytest.raises(errors.CannotMove):
        services.ticket_move(
            move_token=token,
            consultant_slug=consultant.slug,
            caller_name="Bo",
            reason="",
            audio_only=False,
            offer=OFFER,
            channel="c9",
            process="test",
        )


def test_connectivity_of_the_join_shows_in_the_queue_and_the_history(consultant):
    services.ticket_create(
        consultant_slug=consultant.slug,
        caller_name="Bo",
        reason="",
        audio_only=False,
        offer=OFFER,
        channel="c1",
        process="test",
        connectivity="relay",
    )
    [item] = selectors.queue_for(consultant.id)
    assert item["connectivity"] == "relay"

    accept(consultant)

    assert Consultation.objects.get().connectivity == "relay"


def test_watchdog_keeps_the_furthest_step_and_the_rescuing_one(consultant):
    call = answered_call(consultant)

    result = services.consultation_watchdog(
        channel="c1", party="caller", step="relay", recovered=False
    )
    services.consultation_watchdog(
        channel="desk-1", party="consultant", step="ice-restart", recovered=False
    )
    services.consultation_watchdog(
        channel="c1", party="caller", step="relay", recovered=True
    )

    call.refresh_from_db()
    assert (call.watchdog_step, call.rescued_by) == ("relay", "relay")
    assert frames_to(result.events, "desk-1") == [
        {"type": "watchdog", "step": "relay", "recovered": False}
    ]


def test_watchdog_outside_a_call_is_not_in_call(consultant):
    join(consultant, "c1")
    with pytest.raises(errors.NotInCall):
        services.consultation_watchdog(
            channel="c1", party="caller", step="relay", recovered=False
        )


def test_deadline_counts_from_the_answer_not_the_accept(consultant):
    join(consultant, "c1")
    accept(consultant)
    later = timezone.now() + timedelta(minutes=10)

    services.sweep(now=later)

    # Not answered yet: no media could flow; the desk's own grace rules apply.
    assert Consultation.objects.get().outcome == "active"
