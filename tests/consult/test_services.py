"""Queue rules, through the services and the real database, without sockets."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consult import errors, selectors, services
from consult.events import PresenceChanged, QueueChanged, Route, SendFrame
from consult.models import Consultant, Consultation, DeskSocket, ServerProcess, Ticket
from tests.factories import ANSWER, OFFER, accept, join, make_consultant

pytestmark = pytest.mark.django_db


def refused_frame(events, channel: str) -> dict:
    """The `refused` frame sent to `channel`, which carries a move token."""
    [frame] = [
        e.frame
        for e in events
        if isinstance(e, SendFrame)
        and e.channel == channel
        and e.frame["type"] == "refused"
    ]
    assert frame["move_token"]
    return frame


def test_join_queues_caller_at_next_free_position(consultant):
    _, first = join(consultant, "c1")
    ticket, second = join(consultant, "c2", name="Bob")
    assert (first["position"], second["position"]) == (1, 2)
    assert len(second["token"]) >= 32
    assert ticket.token_hash == services.token_hash(second["token"])
    assert second["token"] not in (ticket.token_hash, ticket.offer)


def test_join_announces_the_queue_change(consultant):
    result = services.ticket_create(
        consultant_slug="ada",
        caller_name="Al",
        reason="",
        audio_only=False,
        offer=OFFER,
        channel="c1",
        process="p",
    )
    assert result.events == [QueueChanged(consultant.id, moved=False)]


def test_join_unknown_or_inactive_consultant_is_refused(consultant):
    make_consultant("hidden", is_active=False)
    for slug in ("nobody", "hidden"):
        with pytest.raises(errors.UnknownConsultant):
            join(Consultant(slug=slug), "c1")
    assert not Ticket.objects.exists()


def test_join_offline_consultant_is_unavailable(db):
    offline = make_consultant("off", presence="offline")
    with pytest.raises(errors.ConsultantUnavailable):
        join(offline, "c1")


def test_join_away_or_busy_consultant_is_allowed_without_eta(consultant):
    consultant.presence = "away"
    consultant.save()
    _, queued = join(consultant, "c1")
    assert queued["position"] == 1 and queued["eta_seconds"] is None


def test_second_join_from_same_socket_is_already_queued(consultant):
    join(consultant, "c1")
    with pytest.raises(errors.AlreadyQueued):
        join(consultant, "c1")
    assert Ticket.objects.count() == 1


def test_join_beyond_max_queue_is_queue_full(db):
    small = make_consultant("small", max_queue=2)
    join(small, "c1")
    join(small, "c2")
    with pytest.raises(errors.QueueFull):
        join(small, "c3")


def test_positions_stay_contiguous_when_the_middle_leaves(consultant):
    join(consultant, "c1")
    join(consultant, "c2")
    t3, _ = join(consultant, "c3")
    services.ticket_cancel(channel="c2")
    t3.refresh_from_db()
    assert selectors.ticket_position(t3)[0] == 2
    assert len(selectors.waiting_order(consultant.id)) == 2


def test_accept_next_takes_the_head_with_offer_and_candidates(consultant):
    join(consultant, "c1", name="First")
    join(consultant, "c2", name="Second")
    services.ticket_add_candidate(channel="c1", candidate={"candidate": "candidate:1"})
    result = accept(consultant)
    caller = result.value
    assert caller["name"] == "First"
    assert caller["offer"] == {"type": "offer", "sdp": OFFER}
    assert caller["candidates"] == [{"candidate": "candidate:1"}]
    assert QueueChanged(consultant.id, left=caller["ticket"]) in result.events
    assert PresenceChanged(consultant.id) in result.events
    ticket = Ticket.objects.get(pk=caller["ticket"])
    assert ticket.state == "in_call"
    assert (ticket.offer, ticket.candidates) == ("", [])


def test_accept_chosen_ticket_skips_the_head(consultant):
    join(consultant, "c1")
    second, _ = join(consultant, "c2", name="Chosen")
    caller = accept(consultant, ticket_id=str(second.id)).value
    assert caller["name"] == "Chosen"
    assert selectors.waiting_order(consultant.id) != [str(second.id)]


def test_accept_with_empty_queue_is_queue_empty(consultant):
    with pytest.raises(errors.QueueEmpty):
        accept(consultant)


def test_accept_of_another_consultants_ticket_is_ticket_gone(consultant):
    other = make_consultant("grace")
    ticket, _ = join(other, "c1")
    with pytest.raises(errors.TicketGone):
        accept(consultant, ticket_id=str(ticket.id))
    ticket.refresh_from_db()
    assert ticket.state == "waiting"


def test_accept_while_in_a_call_is_busy_and_changes_nothing(consultant):
    join(consultant, "c1")
    second, _ = join(consultant, "c2")
    accept(consultant)
    with pytest.raises(errors.Busy):
        accept(consultant, channel="desk-2")
    second.refresh_from_db()
    assert second.state == "waiting" and second.offer == OFFER


def test_refuse_tells_the_caller_and_keeps_history(consultant):
    ticket, _ = join(consultant, "c1", reason="Tax return")
    result = services.ticket_refuse(
        consultant_id=consultant.id, ticket_id=str(ticket.id), reason="Fully booked"
    )
    assert refused_frame(result.events, "c1")["reason"] == "Fully booked"
    ticket.refresh_from_db()
    assert (
        ticket.state == "ended" and ticket.offer == "" and ticket.caller_channel == ""
    )
    record = Consultation.objects.get(ticket=ticket)
    assert (record.outcome, record.end_reason, record.reason) == (
        "refused",
        "Fully booked",
        "Tax return",
    )


def test_refuse_of_a_gone_or_foreign_ticket_is_ticket_gone(consultant):
    other = make_consultant("grace")
    ticket, _ = join(other, "c1")
    with pytest.raises(errors.TicketGone):
        services.ticket_refuse(
            consultant_id=consultant.id, ticket_id=str(ticket.id), reason=""
        )


def test_cancel_without_ticket_is_not_queued(consultant):
    with pytest.raises(errors.NotQueued):
        services.ticket_cancel(channel="nobody")


def test_cancel_in_a_call_is_not_queued(consultant):
    join(consultant, "c1")
    accept(consultant)
    with pytest.raises(errors.NotQueued):
        services.ticket_cancel(channel="c1")


def test_first_answer_tells_caller_accepted_then_later_ones_relay(consultant):
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    answer = {"type": "answer", "sdp": ANSWER}
    first = services.consultation_answer(channel="desk-1", answer=answer)
    [tell] = first.events
    assert tell.channel == "c1"
    # Each party learns where the other is, for the candidates to come.
    assert (tell.call, tell.reply_to) == (call_id, "desk-1")
    assert first.value == Route(call_id, "c1")
    assert tell.frame == {
        "type": "accepted",
        "consultation": call_id,
        "consultant": {"slug": "ada", "name": "Ada"},
        "answer": answer,
    }
    again = services.consultation_answer(channel="desk-1", answer=answer)
    relayed = {"type": "answer", "answer": answer}
    assert again.events == [SendFrame("c1", relayed, call=call_id)]
    assert Consultation.objects.get(pk=call_id).connected_at is not None


def test_answer_without_a_call_is_not_in_call(consultant):
    with pytest.raises(errors.NotInCall):
        services.consultation_answer(
            channel="desk-1", answer={"type": "answer", "sdp": ANSWER}
        )


def test_candidates_relay_only_to_the_other_party(consultant):
    join(consultant, "c1")
    join(consultant, "bystander")
    call_id = accept(consultant).value["consultation"]
    ice = {"type": "ice", "candidate": {"candidate": "candidate:9"}}
    from_caller = services.ticket_add_candidate(
        channel="c1", candidate=ice["candidate"]
    )
    assert from_caller.events == [SendFrame("desk-1", ice, call=call_id)]
    assert from_caller.value == Route(call_id, "desk-1")
    from_desk = services.consultation_relay(
        channel="desk-1", party="consultant", frame=ice
    )
    assert from_desk.events == [SendFrame("c1", ice, call=call_id)]
    assert from_desk.value == Route(call_id, "c1")
    with pytest.raises(errors.NotInCall):
        services.consultation_relay(channel="bystander", party="caller", frame=ice)


def test_waiting_candidates_are_bounded(consultant):
    join(consultant, "c1")
    for i in range(services.MAX_CANDIDATES + 10):
        services.ticket_add_candidate(channel="c1", candidate={"candidate": f"c{i}"})
    assert len(Ticket.objects.get().candidates) == services.MAX_CANDIDATES


def test_hangup_ends_call_and_tells_the_other_party(consultant):
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    services.consultation_media_connected(channel="c1", party="caller")
    result = services.consultation_end(channel="c1", party="caller")
    hangup = {"type": "hangup", "by": "caller"}
    assert SendFrame("desk-1", hangup, call=call_id) in result.events
    assert result.value == call_id
    call = Consultation.objects.get(pk=call_id)
    assert (call.outcome, call.ended_by) == ("completed", "caller")
    assert call.talk_seconds is not None
    with pytest.raises(errors.NotInCall):
        services.consultation_end(channel="c1", party="caller")
    # The consultant is free for the next caller.
    join(consultant, "c2")
    assert accept(consultant).value["ticket"]


def test_one_active_consultation_per_consultant_is_a_database_rule(consultant):
    from django.db import IntegrityError, transaction

    join(consultant, "c1")
    accept(consultant)
    with pytest.raises(IntegrityError), transaction.atomic():
        Consultation.objects.create(
            consultant=consultant, caller_name="x", requested_at=timezone.now()
        )


def test_resume_waiting_keeps_the_place_and_rebinds_the_socket(consultant):
    join(consultant, "c0")
    _, queued = join(consultant, "c1")
    services.caller_dropped(channel="c1")
    assert selectors.queue_for(consultant.id)[1]["reconnecting"] is True
    resumption = services.ticket_resume(
        token=queued["token"], channel="c1-new", process="p"
    ).value
    kind, payload = resumption.kind, resumption.payload
    assert kind == "queued" and payload["position"] == 2
    assert payload["ticket"] == queued["ticket"]
    assert selectors.queue_for(consultant.id)[1]["reconnecting"] is False
    services.ticket_cancel(channel="c1-new")


def test_resume_in_call_tells_consultant_back(consultant):
    _, queued = join(consultant, "c1")
    accept(consultant)
    dropped = services.caller_dropped(channel="c1")
    assert dropped.events == [
        SendFrame("desk-1", {"type": "peer", "state": "reconnecting"})
    ]
    result = services.ticket_resume(token=queued["token"], channel="c2", process="p")
    kind, payload = result.value.kind, result.value.payload
    assert kind == "resumed"
    assert payload["consultant"] == {"slug": "ada", "name": "Ada"}
    assert result.events == [SendFrame("desk-1", {"type": "peer", "state": "back"})]


def test_resume_with_unknown_ended_or_expired_token_is_bad_token(consultant, settings):
    settings.CONSULT_GRACE_SECONDS = 5
    with pytest.raises(errors.BadToken):
        services.ticket_resume(token="x" * 43, channel="c9", process="p")
    _, queued = join(consultant, "c1")
    services.ticket_cancel(channel="c1")
    with pytest.raises(errors.BadToken):
        services.ticket_resume(token=queued["token"], channel="c9", process="p")
    _, queued = join(consultant, "c2")
    services.caller_dropped(channel="c2")
    Ticket.objects.filter(state="waiting").update(
        dropped_at=timezone.now() - timedelta(seconds=6)
    )
    with pytest.raises(errors.BadToken):
        services.ticket_resume(token=queued["token"], channel="c9", process="p")


def test_sweep_abandons_waiting_caller_after_grace(consultant, settings):
    settings.CONSULT_GRACE_SECONDS = 5
    ticket, _ = join(consultant, "c1")
    services.caller_dropped(channel="c1")
    assert (
        services.sweep().events == []
        or not Ticket.objects.filter(state="ended").exists()
    )
    later = timezone.now() + timedelta(seconds=6)
    result = services.sweep(now=later)
    assert QueueChanged(consultant.id) in result.events
    record = Consultation.objects.get(ticket=ticket)
    assert record.outcome == "abandoned"
    assert Ticket.objects.get().offer == ""


def test_sweep_hangs_up_a_call_whose_caller_never_came_back(consultant, settings):
    settings.CONSULT_GRACE_SECONDS = 5
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    services.consultation_media_connected(channel="desk-1", party="consultant")
    services.caller_dropped(channel="c1")
    result = services.sweep(now=timezone.now() + timedelta(seconds=6))
    hangup = {"type": "hangup", "by": "caller", "reason": "disconnected"}
    assert SendFrame("desk-1", hangup, call=call_id) in result.events
    assert Consultation.objects.get(pk=call_id).outcome == "disconnected"
    assert not Consultation.objects.filter(outcome="active").exists()


def test_desk_drop_and_return_within_grace_resumes_the_call(consultant):
    services.desk_opened(consultant_id=consultant.id, channel="desk-1", process="p")
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    dropped = services.desk_closed(consultant_id=consultant.id, channel="desk-1")
    assert dropped.events == [
        SendFrame("c1", {"type": "peer", "state": "reconnecting"})
    ]
    back = services.desk_opened(
        consultant_id=consultant.id, channel="desk-2", process="p"
    )
    assert back.value == {
        "consultation": call_id,
        "caller": {"ticket": str(Ticket.objects.get().id), "name": "Caller"},
    }
    assert SendFrame("c1", {"type": "peer", "state": "back"}) in back.events
    assert services.consultation_relay(
        channel="desk-2", party="consultant", frame={"type": "ping"}
    ).events == [SendFrame("c1", {"type": "ping"}, call=call_id)]


def test_consultant_without_desk_goes_offline_after_grace_and_callers_are_told(
    consultant, settings
):
    settings.CONSULT_GRACE_SECONDS = 5
    services.desk_opened(consultant_id=consultant.id, channel="desk-1", process="p")
    join(consultant, "c1")
    services.desk_closed(consultant_id=consultant.id, channel="desk-1")
    services.sweep()
    consultant.refresh_from_db()
    assert consultant.presence == "online"
    result = services.sweep(now=timezone.now() + timedelta(seconds=6))
    consultant.refresh_from_db()
    assert consultant.presence == "offline"
    assert refused_frame(result.events, "c1")["reason"] == services.OFFLINE_REASON


def test_dead_process_sockets_enter_grace_then_end(consultant, settings):
    settings.CONSULT_GRACE_SECONDS = 5
    settings.CONSULT_PROCESS_TIMEOUT_SECONDS = 10
    services.process_heartbeat(process="dead")
    services.desk_opened(consultant_id=consultant.id, channel="desk-1", process="dead")
    join(consultant, "c1")
    call_id = services.ticket_accept(
        consultant_id=consultant.id, channel="desk-1", process="dead"
    ).value["consultation"]
    ServerProcess.objects.filter(pk="dead").update(
        heartbeat_at=timezone.now() - timedelta(seconds=11)
    )
    first = services.sweep()
    assert SendFrame("c1", {"type": "peer", "state": "reconnecting"}) in first.events
    assert ServerProcess.objects.get(pk="dead").swept_at is not None
    assert not DeskSocket.objects.exists()
    later = services.sweep(now=timezone.now() + timedelta(seconds=6))
    hangup = {"type": "hangup", "by": "consultant", "reason": "disconnected"}
    assert SendFrame("c1", hangup, call=call_id) in later.events
    assert not Consultation.objects.filter(outcome="active").exists()


def test_presence_and_status(consultant):
    assert selectors.consultant_presence(consultant) == "online"
    services.consultant_set_presence(consultant_id=consultant.id, presence="away")
    consultant.refresh_from_db()
    assert selectors.consultant_presence(consultant) == "away"
    join(consultant, "c1")
    accept(consultant)
    assert selectors.consultant_presence(consultant) == "busy"
    [card] = selectors.consultants_for_lobby()
    assert card == {"slug": "ada", "name": "Ada", "status": "busy", "queue_length": 0}


def test_an_address_may_have_only_so_many_tickets_waiting(consultant, settings):
    settings.CONSULT_MAX_WAITING_PER_ADDRESS = 2
    join(consultant, "c1", address="203.0.113.9")
    join(consultant, "c2", address="203.0.113.9")
    # Its own code: the consultant's queue is not full.
    with pytest.raises(errors.TooManyFromAddress):
        join(consultant, "c3", address="203.0.113.9")
    join(consultant, "c4", address="203.0.113.10")
    services.ticket_cancel(channel="c1")
    join(consultant, "c3", address="203.0.113.9")
    # The address goes with the signaling when a ticket leaves the queue.
    assert Ticket.objects.get(caller_channel="", state="ended").caller_address == ""


def test_each_delivery_says_what_it_does_to_the_receivers_route(consultant):
    """The route cache's invalidation is a flag of the delivery, not a frame type."""
    _, queued = join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    (accepted,) = services.consultation_answer(channel="desk-1", answer=ANSWER).events
    assert (accepted.reply_to, accepted.stale_route, accepted.ends_call) == (
        "desk-1",
        False,
        False,
    )
    (relayed,) = services.consultation_relay(
        channel="c1", party="caller", frame={"type": "ice", "candidate": {}}
    ).events
    assert (relayed.reply_to, relayed.stale_route, relayed.ends_call) == (
        "",
        False,
        False,
    )
    (reconnecting,) = services.caller_dropped(channel="c1").events
    assert reconnecting.stale_route and not reconnecting.ends_call
    resumed = services.ticket_resume(token=queued["token"], channel="c2", process="p")
    (back,) = resumed.events
    assert back.stale_route and not back.ends_call
    ended = services.consultation_end(channel="c2", party="caller")
    (hangup,) = [e for e in ended.events if isinstance(e, SendFrame)]
    assert hangup.call == call_id and hangup.stale_route and hangup.ends_call


def test_a_row_that_cannot_be_repaired_does_not_stop_the_repair_pass(
    consultant, settings, caplog
):
    settings.CONSULT_GRACE_SECONDS = 5
    grace = make_consultant("grace")
    waiting, _ = join(grace, "c2")
    services.caller_dropped(channel="c2")
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    services.caller_dropped(channel="c1")
    # What the old admin's "delete selected" did: a live call removed raw.
    Consultation.objects.filter(pk=call_id).delete()
    Consultation.objects.create(  # a row no repair can end: its ticket is gone
        consultant=grace,
        caller_name="Ghost",
        requested_at=timezone.now(),
        consultant_dropped_at=timezone.now() - timedelta(seconds=60),
    )

    result = services.sweep(now=timezone.now() + timedelta(seconds=6))
    # The waiting caller of the other consultant was still swept...
    assert Ticket.objects.get(pk=waiting.pk).state == "ended"
    assert QueueChanged(grace.id) in result.events
    # ...the broken row is logged with its id, and the pass stays safe to repeat.
    assert "repair of consultation" in caplog.text
    services.sweep(now=timezone.now() + timedelta(seconds=7))


def test_a_caller_whose_consultation_was_deleted_is_not_left_in_call(consultant):
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    Consultation.objects.filter(pk=call_id).delete()
    services.caller_dropped(channel="c1")
    assert Ticket.objects.get().state == "ended"


def test_a_call_whose_media_never_connected_ends_as_failed_to_connect(consultant):
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    services.consultation_end(channel="c1", party="caller")
    call = Consultation.objects.get(pk=call_id)
    assert call.outcome == "failed"
    assert call.talk_seconds is None


def test_talk_time_counts_from_the_first_media_report(consultant):
    join(consultant, "c1")
    call_id = accept(consultant).value["consultation"]
    services.consultation_media_connected(channel="desk-1", party="consultant")
    first = Consultation.objects.get(pk=call_id).media_connected_at
    services.consultation_media_connected(channel="c1", party="caller")
    assert Consultation.objects.get(pk=call_id).media_connected_at == first
    with pytest.raises(errors.NotInCall):
        services.consultation_media_connected(channel="c9", party="caller")
    services.consultation_end(channel="desk-1", party="consultant")
    call = Consultation.objects.get(pk=call_id)
    assert call.outcome == "completed"
    assert call.talk_seconds == (call.ended_at - first).total_seconds()


def test_what_a_stopped_process_held_ends_one_process_timeout_after_the_stop(
    consultant, settings
):
    """A clean stop closed the sockets: their clients came back at once, if at all."""
    settings.CONSULT_GRACE_SECONDS = 30
    settings.CONSULT_PROCESS_TIMEOUT_SECONDS = 10
    services.process_heartbeat(process="old")
    services.desk_opened(consultant_id=consultant.id, channel="desk-1", process="old")
    ticket = services.ticket_create(
        consultant_slug=consultant.slug,
        caller_name="Gone",
        reason="",
        audio_only=False,
        offer=OFFER,
        channel="c1",
        process="old",
    ).value.ticket
    services.process_stopped(process="old")

    services.sweep()  # the restarted process's first pass
    assert Ticket.objects.get(pk=ticket.pk).state == "waiting"
    later = services.sweep(now=timezone.now() + timedelta(seconds=11))
    assert Ticket.objects.get(pk=ticket.pk).state == "ended"
    assert Consultant.objects.get(pk=consultant.pk).presence == "offline"
    assert PresenceChanged(consultant.id) in later.events


def test_a_heartbeat_says_when_the_process_was_taken_for_dead():
    assert services.process_heartbeat(process="p") is False  # first beat
    assert services.process_heartbeat(process="p") is True
    ServerProcess.objects.filter(pk="p").delete()  # another process swept it
    assert services.process_heartbeat(process="p") is False
