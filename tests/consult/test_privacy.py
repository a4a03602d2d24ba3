"""Callers' personal data: gone from tickets when they end, from the history
after the retention period or on an admin's request (issue 19, item 16)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from consult import errors, services
from consult.models import Consultation, Ticket
from tests.factories import accept, join

pytestmark = pytest.mark.django_db

NAME, REASON = "Hedy Private", "My very private tax question"
ADDRESS = "198.51.100.7"
CANDIDATE = {"candidate": "candidate:1 1 udp 1 198.51.100.7 5000 typ host"}


def personal(ticket: Ticket) -> dict:
    ticket.refresh_from_db()
    return {
        "name": ticket.caller_name,
        "reason": ticket.reason,
        "address": ticket.caller_address,
        "offer": ticket.offer,
        "candidates": ticket.candidates,
    }


NOTHING = {"name": "", "reason": "", "address": "", "offer": "", "candidates": []}


def waiting(consultant, channel="caller-1"):
    ticket, queued = join(
        consultant, channel, name=NAME, reason=REASON, address=ADDRESS
    )
    services.ticket_add_candidate(channel=channel, candidate=CANDIDATE)
    return ticket, queued["token"]


def test_a_cancelled_ticket_keeps_no_personal_data_nor_a_usable_token(consultant):
    ticket, token = waiting(consultant)

    services.ticket_cancel(channel="caller-1")

    assert personal(ticket) == NOTHING
    assert not Ticket.objects.filter(token_hash=services.token_hash(token)).exists()
    with pytest.raises(errors.BadToken):
        services.ticket_resume(token=token, channel="caller-2", process="test")
    history = Consultation.objects.get()
    assert (history.caller_name, history.reason) == (NAME, REASON)


def test_a_refused_ticket_keeps_no_personal_data(consultant):
    ticket, _ = waiting(consultant)

    services.ticket_refuse(consultant_id=consultant.id, ticket_id=ticket.pk, reason="")

    assert personal(ticket) == NOTHING


def test_a_ticket_keeps_the_name_during_its_call_and_loses_it_at_the_end(consultant):
    ticket, token = waiting(consultant)
    caller = accept(consultant).value
    assert caller["name"] == NAME and caller["candidates"] == [CANDIDATE]
    # A caller who reloads mid-call still resumes its call.
    resumed = services.ticket_resume(token=token, channel="caller-2", process="test")
    assert resumed.value.kind == "resumed"
    assert personal(ticket)["name"] == NAME

    services.consultation_end(channel="desk-1", party="consultant")

    assert personal(ticket) == NOTHING
    assert Consultation.objects.get().caller_name == NAME


def test_every_ended_ticket_of_many_is_erased(consultant):
    tickets = [waiting(consultant, f"caller-{i}")[0] for i in range(3)]
    services.ticket_cancel(channel="caller-0")
    services.ticket_refuse(
        consultant_id=consultant.id, ticket_id=tickets[1].pk, reason="no"
    )
    accept(consultant)
    services.consultation_end(channel="caller-2", party="caller")

    assert [personal(t) for t in tickets] == [NOTHING] * 3


def ended_call(consultant, *, days_ago: float, name=NAME, channel="caller-1"):
    join(consultant, channel, name=name, reason=REASON)
    accept(consultant)
    services.consultation_end(channel=channel, party="caller")
    call = Consultation.objects.get(caller_name=name)
    ended = timezone.now() - timedelta(days=days_ago)
    Consultation.objects.filter(pk=call.pk).update(
        requested_at=ended - timedelta(minutes=10),
        accepted_at=ended - timedelta(minutes=5),
        ended_at=ended,
        end_reason="Call me back on +44 20 7946 0000",
    )
    Ticket.objects.filter(pk=call.ticket_id).update(ended_at=ended)
    call.refresh_from_db()
    return call


FIGURES = [
    "requested_at",
    "accepted_at",
    "ended_at",
    "outcome",
    "ended_by",
    "consultant_id",
    "audio_only",
]


def figures(call) -> dict:
    call.refresh_from_db()
    return {field: getattr(call, field) for field in FIGURES}


def test_purge_anonymises_history_past_the_retention_and_keeps_the_figures(
    consultant, settings
):
    settings.CONSULT_HISTORY_RETENTION_DAYS = 30
    old = ended_call(consultant, days_ago=31, name="Old Olga", channel="c-old")
    recent = ended_call(consultant, days_ago=29, name="New Nina", channel="c-new")
    kept = figures(old)

    call_command("purge_history")

    old.refresh_from_db()
    assert (old.caller_name, old.reason, old.end_reason) == ("", "", "")
    assert old.anonymised_at is not None
    assert figures(old) == kept
    assert old.wait_seconds == 300
    recent.refresh_from_db()
    assert (recent.caller_name, recent.reason) == ("New Nina", REASON)
    assert recent.anonymised_at is None
    # The old call's ticket is gone; the recent one's too (ended days ago).
    assert not Ticket.objects.exists()


def test_purge_leaves_active_calls_and_waiting_callers_alone(consultant, settings):
    settings.CONSULT_HISTORY_RETENTION_DAYS = 0
    in_call, _ = waiting(consultant, "caller-1")
    accept(consultant)
    queued, _ = waiting(consultant, "caller-2")

    call_command("purge_history")

    assert personal(in_call)["name"] == NAME
    assert personal(queued)["address"] == ADDRESS
    assert Consultation.objects.get().caller_name == NAME


def test_purge_erases_ended_tickets_written_before_erasure_at_end(consultant):
    ticket, _ = waiting(consultant)
    services.ticket_cancel(channel="caller-1")
    # As a ticket that ended before tickets were erased at their end.
    Ticket.objects.filter(pk=ticket.pk).update(
        caller_name=NAME, reason=REASON, caller_address=ADDRESS, token_hash="0" * 64
    )

    purged = services.privacy.history_purge()

    assert personal(ticket) == NOTHING
    assert (purged.anonymised, purged.tickets_erased) == (0, 1)
    assert services.privacy.history_purge().tickets_erased == 0


def test_purge_command_reports_what_it_did(consultant, settings, capsys):
    settings.CONSULT_HISTORY_RETENTION_DAYS = 7
    ended_call(consultant, days_ago=8)

    call_command("purge_history")

    assert "anonymised 1 consultations older than 7 days" in capsys.readouterr().out


@pytest.fixture
def lead(client):
    get_user_model().objects.create_superuser("lead", password="a-lead-password")
    client.login(username="lead", password="a-lead-password")
    return client


def admin_action(client, action: str, *pks):
    return client.post(
        "/admin/consult/consultation/",
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )


def test_admin_erases_one_callers_personal_data_on_request(lead, consultant):
    hers = ended_call(consultant, days_ago=1, name=NAME, channel="c-1")
    other = ended_call(consultant, days_ago=1, name="Other Otto", channel="c-2")
    kept = figures(hers)

    page = admin_action(lead, "erase_personal_data", hers.pk)

    assert "Erased the caller&#x27;s personal data of 1" in page.content.decode()
    hers.refresh_from_db()
    assert (hers.caller_name, hers.reason, hers.end_reason) == ("", "", "")
    assert figures(hers) == kept
    assert hers.ticket_id is None  # its ticket was deleted
    other.refresh_from_db()
    assert other.caller_name == "Other Otto"
    history = lead.get("/admin/consult/consultation/").content.decode()
    assert NAME not in history and "Other Otto" in history


def test_admin_erasure_leaves_an_active_call_alone(lead, consultant):
    waiting(consultant)
    accept(consultant)
    call = Consultation.objects.get()

    page = admin_action(lead, "erase_personal_data", call.pk)

    assert "1 still active was left alone" in page.content.decode()
    call.refresh_from_db()
    assert call.caller_name == NAME


def test_deleting_consultations_in_the_admin_leaves_no_name_in_any_ticket(
    lead, consultant
):
    call = ended_call(consultant, days_ago=1)
    # Even a ticket that still held the name (ended before erasure at end).
    Ticket.objects.filter(pk=call.ticket_id).update(caller_name=NAME, reason=REASON)
    other = ended_call(consultant, days_ago=1, name="Other Otto", channel="c-2")

    confirmed = lead.post(
        "/admin/consult/consultation/",
        {"action": "delete_selected", "_selected_action": [call.pk], "post": "yes"},
    )

    assert confirmed.status_code == 302
    assert list(Consultation.objects.all()) == [other]
    assert list(Ticket.objects.values_list("pk", flat=True)) == [other.ticket_id]
    assert not Ticket.objects.filter(caller_name=NAME).exists()


def test_deleting_one_consultation_from_its_page_deletes_its_ticket(lead, consultant):
    call = ended_call(consultant, days_ago=1)
    Ticket.objects.filter(pk=call.ticket_id).update(caller_name=NAME)

    response = lead.post(
        f"/admin/consult/consultation/{call.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Consultation.objects.exists()
    assert not Ticket.objects.filter(caller_name=NAME).exists()
