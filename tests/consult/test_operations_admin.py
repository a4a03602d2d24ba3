"""The operations room's admin pages: the board's state and actions (staff,
permission, CSRF, history), the analytics page and the CSV export."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.http import StreamingHttpResponse
from django.test import Client

from consult.models import CallFeedback, CallQuality, Consultation, Ticket
from tests.factories import accept, join, make_consultant

pytestmark = pytest.mark.django_db

PASSWORD = "a-staff-password"


def staff(username: str, *perms: str) -> Client:
    user = get_user_model().objects.create_user(
        username, password=PASSWORD, is_staff=True
    )
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def lead() -> Client:
    return staff("lead", "view_consultation", "operate_board")


def act(client: Client, **body):
    return client.post(
        "/admin/ops/board/act/", json.dumps(body), content_type="application/json"
    )


@pytest.fixture
def floor():
    ada, bea = make_consultant("ada"), make_consultant("bea")
    waiting, _ = join(ada, "caller-1", name="Wu")
    join(ada, "caller-2", name="<b>Xi</b>")
    in_call, _ = join(bea, "caller-3", name="Yo")
    accept(bea, "desk-bea")
    return ada, bea, waiting, in_call


def test_the_board_state_lists_consultants_queues_and_calls(floor):
    _, _, waiting, _ = floor
    state = lead().get("/admin/ops/board/state.json").json()
    assert state["can_act"] is True
    by_slug = {c["slug"]: c for c in state["consultants"]}
    assert [c["name"] for c in by_slug["ada"]["queue"]] == ["Wu", "<b>Xi</b>"]
    assert by_slug["ada"]["queue"][0]["ticket"] == str(waiting.pk)
    assert by_slug["ada"]["queue"][0]["connection"] == "connected"
    assert by_slug["ada"]["call"] is None
    assert by_slug["ada"]["queue"][0]["connectivity"] == ""
    call = by_slug["bea"]["call"]
    assert call["caller"] == "Yo"
    assert call["media"] == "connecting"
    assert by_slug["bea"]["status"] == "busy"


def test_the_board_shows_each_callers_pre_call_check(floor):
    _, _, waiting, _ = floor
    Ticket.objects.filter(pk=waiting.pk).update(connectivity="relay")
    state = lead().get("/admin/ops/board/state.json").json()
    by_slug = {c["slug"]: c for c in state["consultants"]}
    assert [c["connectivity"] for c in by_slug["ada"]["queue"]] == ["relay", ""]


def test_the_board_needs_staff_and_view_permission(floor):
    assert Client().get("/admin/ops/board/").status_code == 302  # to the login
    bare = staff("bare")
    assert bare.get("/admin/ops/board/state.json").status_code == 403
    watcher = staff("watcher", "view_consultation")
    page = watcher.get("/admin/ops/board/")
    assert page.status_code == 200
    assert b'data-testid="ops-board"' in page.content
    assert b'data-can-act="0"' in page.content
    assert watcher.get("/admin/ops/board/state.json").json()["can_act"] is False


def test_acting_needs_the_permission_and_changes_nothing_without_it(floor):
    _, _, waiting, _ = floor
    watcher = staff("watcher", "view_consultation")
    assert act(watcher, action="remove", ticket=str(waiting.pk)).status_code == 403
    waiting.refresh_from_db()
    assert waiting.state == "waiting"


def test_acting_needs_the_csrf_token(floor):
    _, _, waiting, _ = floor
    lead()
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="lead", password=PASSWORD)
    body = json.dumps({"action": "remove", "ticket": str(waiting.pk)})
    refused = client.post(
        "/admin/ops/board/act/", body, content_type="application/json"
    )
    assert refused.status_code == 403
    waiting.refresh_from_db()
    assert waiting.state == "waiting"
    page = client.get("/admin/ops/board/")
    token = page.context["csrf_token"]
    done = client.post(
        "/admin/ops/board/act/",
        body,
        content_type="application/json",
        headers={"X-CSRFToken": str(token)},
    )
    assert done.status_code == 200


def test_end_call_and_remove_go_through_the_services_with_who_did_it(floor):
    _, _, waiting, in_call = floor
    client = lead()
    call = Consultation.objects.get(ticket=in_call)
    assert act(client, action="end-call", consultation=call.pk).status_code == 200
    call.refresh_from_db()
    assert (call.outcome, call.ended_by) == ("failed", "operator")
    assert act(client, action="end-call", consultation=call.pk).status_code == 409

    assert act(client, action="remove", ticket=str(waiting.pk)).status_code == 200
    removed = Consultation.objects.get(ticket_id=waiting.pk)
    assert (removed.outcome, removed.ended_by) == ("refused", "operator")
    entries = LogEntry.objects.filter(user__username="lead").order_by("pk")
    assert [(e.object_id, e.change_message) for e in entries] == [
        (str(call.pk), "Ended from the board."),
        (str(removed.pk), "Removed from the queue from the board."),
    ]


def test_move_keeps_the_join_time_and_refuses_an_offline_colleague(floor):
    _, bea, waiting, _ = floor
    client = lead()
    joined_at = waiting.created_at
    make_consultant("cy", presence="offline")
    gone = act(client, action="move", ticket=str(waiting.pk), to="cy")
    assert gone.status_code == 409
    assert (
        act(client, action="move", ticket=str(waiting.pk), to="bea").status_code == 200
    )
    waiting.refresh_from_db()
    assert (waiting.consultant, waiting.created_at) == (bea, joined_at)
    assert waiting.state == "waiting"


def test_presence_away_and_offline(floor):
    ada, _, _, _ = floor
    client = lead()
    assert (
        act(client, action="presence", consultant="ada", status="away").status_code
        == 200
    )
    ada.refresh_from_db()
    assert ada.presence == "away"
    assert (
        act(client, action="presence", consultant="ada", status="offline").status_code
        == 200
    )
    ada.refresh_from_db()
    assert ada.presence == "offline"
    # Its waiting callers were refused, as when a consultant leaves.
    assert not Ticket.objects.filter(consultant=ada, state="waiting").exists()
    assert (
        act(client, action="presence", consultant="ada", status="busy").status_code
        == 400
    )
    # Offline now, she cannot be set away: she would take callers with no desk.
    refused = act(client, action="presence", consultant="ada", status="away")
    assert refused.status_code == 409
    ada.refresh_from_db()
    assert ada.presence == "offline"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "explode"},
        {"action": "remove", "ticket": "not-a-uuid"},
        {"action": "end-call", "consultation": "x"},
        {"action": "end-call", "consultation": 1e400},
        {"action": "presence", "consultant": "nobody", "status": "away"},
    ],
)
def test_malformed_actions_are_refused(floor, body):
    assert act(lead(), **body).status_code == 400


def test_the_analytics_page_renders_its_plots_with_numbers():
    ada = make_consultant("ada")
    now = datetime.now(UTC)
    Consultation.objects.create(
        consultant=ada,
        caller_name="<script>alert(1)</script>",
        requested_at=now - timedelta(minutes=10),
        ended_at=now - timedelta(minutes=9),
        outcome="refused",
        end_reason="<img src=x onerror=alert(1)>",
    )
    page = lead().get("/admin/ops/analytics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="analytics"' in html
    for metric in (
        "wait-trend",
        "abandonment",
        "refusals",
        "talk-time",
        "accept-to-media",
        "relayed",
        "rating-rtt",
    ):
        assert f'data-metric="{metric}"' in html
    assert "<svg" in html and "<desc" in html
    # A reason is text, never markup.
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    filtered = lead_again_get(f"/admin/ops/analytics/?consultant={ada.pk}&by=hour")
    assert filtered.status_code == 200
    bad = lead_again_get("/admin/ops/analytics/?start=2026-05-02&end=2026-05-01")
    assert bad.status_code == 200 and bad.context["plots"] is None
    # Dates at the calendar's ends are refused, not an overflow (500).
    # In Korean, the outcomes and the trend's unit are in Korean words too.
    korean = Client(headers={"accept-language": "ko"})
    assert korean.login(username="lead", password=PASSWORD)
    html = korean.get("/admin/ops/analytics/").content.decode()
    assert "거절됨" in html and "일별 대기 시간" in html
    for edge in ("end=9999-12-31", "end=0001-01-03", "start=0001-01-01"):
        odd = lead_again_get(f"/admin/ops/analytics/?{edge}")
        assert odd.status_code == 200 and odd.context["plots"] is None


def lead_again_get(url: str):
    client = Client()
    assert client.login(username="lead", password=PASSWORD)
    return client.get(url)


def test_analytics_needs_the_view_permission():
    assert staff("bare").get("/admin/ops/analytics/").status_code == 403


def test_export_streams_one_row_per_filtered_consultation():
    ada, bea = make_consultant("ada"), make_consultant("bea")
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    first = Consultation.objects.create(
        consultant=ada,
        caller_name="Wu",
        requested_at=start,
        accepted_at=start + timedelta(seconds=12),
        media_connected_at=start + timedelta(seconds=13, milliseconds=500),
        ended_at=start + timedelta(seconds=73, milliseconds=500),
        outcome="completed",
        ended_by="caller",
    )
    CallQuality.objects.create(
        consultation=first,
        accept_to_media_ms=1500,
        relayed=True,
        caller_candidate="relay",
        consultant_candidate="host",
        rtt_histogram={"30": 1, "90": 2},
        rtt_worst_ms=95,
        loss_sum_pct=3,
        loss_samples=2,
        in_kbps_sum=1200,
        out_kbps_sum=600,
        kbps_samples=2,
        freezes=1,
    )
    CallFeedback.objects.create(consultation=first, rating=4, comment="=HYPERLINK(1)")
    Consultation.objects.create(
        consultant=bea,
        caller_name="Xi",
        requested_at=start,
        ended_at=start + timedelta(seconds=40),
        outcome="cancelled",
        ended_by="caller",
    )
    client = lead()
    assert (
        b'data-testid="export-csv"'
        in client.get("/admin/consult/consultation/").content
    )
    response = client.get(
        f"/admin/consult/consultation/export.csv?consultant__id__exact={ada.pk}"
    )
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    )
    assert len(rows) == 1
    got = rows[0]
    assert got["consultation"] == str(first.pk)
    assert got["consultant"] == "ada"
    assert got["outcome"] == "completed"
    assert got["ended_by"] == "caller"
    assert (got["wait_seconds"], got["talk_seconds"]) == ("12", "60")
    assert got["accept_to_media_ms"] == "1500"
    assert (got["relayed"], got["caller_candidate"]) == ("1", "relay")
    assert (got["rtt_median_ms"], got["rtt_worst_ms"]) == ("90", "95")
    assert (got["loss_mean_pct"], got["in_kbps_mean"]) == ("1.5", "600.0")
    assert (got["freezes"], got["rating"]) == ("1", "4")
    # A spreadsheet must not run a caller's text as a formula.
    assert got["comment"] == "'=HYPERLINK(1)"
    everyone = client.get("/admin/consult/consultation/export.csv")
    body = b"".join(everyone.streaming_content).decode()
    assert len(body.strip().splitlines()) == 3
    assert ",cancelled,caller," in body
    # Names stay in the admin: the export carries figures only.
    assert "Wu" not in body and "Xi" not in body


def test_export_needs_the_view_permission():
    assert (
        staff("bare").get("/admin/consult/consultation/export.csv").status_code == 403
    )


def test_erasing_a_callers_data_erases_their_comment_and_keeps_the_rating():
    from consult.services import privacy

    ada = make_consultant("ada")
    now = datetime.now(UTC)
    call = Consultation.objects.create(
        consultant=ada,
        caller_name="Wu",
        requested_at=now - timedelta(minutes=5),
        ended_at=now,
        outcome="completed",
    )
    CallFeedback.objects.create(consultation=call, rating=2, comment="Call me, Wu")
    assert privacy.consultations_erase(consultation_ids=[call.pk]) == 1
    feedback = CallFeedback.objects.get(consultation=call)
    assert (feedback.rating, feedback.comment) == (2, "")


def test_a_consultations_page_shows_its_quality_and_feedback_escaped():
    ada = make_consultant("ada")
    now = datetime.now(UTC)
    call = Consultation.objects.create(
        consultant=ada,
        caller_name="Wu",
        requested_at=now - timedelta(minutes=5),
        ended_at=now,
        outcome="completed",
    )
    CallQuality.objects.create(consultation=call, rtt_histogram={"42": 1})
    CallFeedback.objects.create(consultation=call, rating=3, comment="<i>meh</i>")
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    client = Client()
    assert client.login(username="root", password=PASSWORD)
    page = client.get(f"/admin/consult/consultation/{call.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Median RTT (ms)" in html and ">42<" in html
    assert "&lt;i&gt;meh&lt;/i&gt;" in html and "<i>meh</i>" not in html
