"""The admin pages a support lead uses render with real data."""

import pytest
from django.contrib.auth import get_user_model

from consult import services
from tests.factories import accept, join, make_consultant

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead_client(client):
    get_user_model().objects.create_superuser("lead", password="a-lead-password")
    client.login(username="lead", password="a-lead-password")
    return client


@pytest.fixture
def busy_day(consultant):
    make_consultant("grace", presence="away", title="Software")
    join(consultant, "c1", name="Talking Tom", reason="Taxes")
    accept(consultant)
    join(consultant, "c2", name="Waiting Wendy")
    join(consultant, "c3", name="Refused Rita")
    ticket = consultant.tickets.get(caller_name="Refused Rita")
    services.ticket_refuse(
        consultant_id=consultant.id, ticket_id=ticket.pk, reason="Booked"
    )
    return consultant


def test_consultant_list_shows_live_status_and_queue_length(lead_client, busy_day):
    page = lead_client.get("/admin/consult/consultant/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Ada" in text and "Grace" in text
    assert "in a call" in text and "away" in text


def test_live_queue_lists_waiting_and_in_call_callers_only(lead_client, busy_day):
    page = lead_client.get("/admin/consult/ticket/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Waiting Wendy" in text
    assert "Refused Rita" not in text


def test_history_filters_and_searches(lead_client, busy_day):
    page = lead_client.get("/admin/consult/consultation/?outcome__exact=refused")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Refused Rita" in text and "Talking Tom" not in text
    found = lead_client.get("/admin/consult/consultation/?q=Tom").content.decode()
    assert "Talking Tom" in found and "Refused Rita" not in found
    detail_id = busy_day.consultations.get(caller_name="Talking Tom").pk
    detail = lead_client.get(f"/admin/consult/consultation/{detail_id}/change/")
    assert detail.status_code == 200
    assert "v=0" not in detail.content.decode()


def test_history_is_read_only(lead_client, busy_day):
    assert lead_client.get("/admin/consult/consultation/add/").status_code == 403
    record = busy_day.consultations.first()
    response = lead_client.post(
        f"/admin/consult/consultation/{record.pk}/change/", {"caller_name": "Forged"}
    )
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.caller_name != "Forged"


def test_admin_needs_staff_login(client, busy_day):
    response = client.get("/admin/consult/consultation/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
