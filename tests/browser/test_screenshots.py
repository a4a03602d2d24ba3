"""The pages as people see them, on a laptop and on a phone in portrait.

Set SCREENSHOT_DIR (`make screenshots` sets docs/screenshots) to keep the
pictures the README shows; otherwise they go to a scratch directory.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from consult.models import Consultant
from tests.browser.conftest import off_the_loop
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    join,
    open_call_page,
    open_desk,
    queue_items,
    send_chat,
)
from tests.factories import make_consultant

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
DEMO = [
    ("ada", "Ada Lovelace", "Mathematics tutor"),
    ("grace", "Grace Hopper", "Software consultant"),
    ("alan", "Alan Turing", "Cryptography adviser"),
]
FITS_WIDTH = "() => document.documentElement.scrollWidth <= window.innerWidth"


def picture(page, path):
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.screenshot(path=path, full_page=True)


@pytest.fixture
def shots(tmp_path):
    directory = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def demo(django_db_blocker, database):
    """Only the demo consultants show in the lobby."""

    def make():
        Consultant.objects.update(is_active=False)
        for slug, name, title in DEMO:
            # Made by the first test that asks; the next ones take them back.
            if not Consultant.objects.filter(slug=slug).update(is_active=True):
                make_consultant(slug, name=name, title=title, presence="offline")

    with django_db_blocker.unblock():
        off_the_loop(make)


def test_pages_look_right_on_a_laptop_and_fit_a_phone(new_page, demo, shots):
    desk = open_desk(new_page(viewport=LAPTOP), "ada")
    away = open_desk(new_page(viewport=LAPTOP), "grace")
    away.get_by_test_id("desk-status").select_option("away")

    first = open_call_page(new_page(viewport=LAPTOP), "ada")
    first.get_by_test_id("caller-name").fill("Marie Curie")
    expect(first.get_by_label("Camera", exact=True)).not_to_have_value("")
    picture(first, shots / "call-join.png")
    join(first, "Marie Curie", reason="Help with a proof by induction, please.")
    second = open_call_page(new_page(viewport=PHONE), "ada")
    join(second, "Blaise Pascal", reason="Probability homework", audio_only=True)
    expect(second.get_by_test_id("queue-position")).to_have_text("2")
    desk.get_by_test_id("queue-message-input").fill(
        "Running about 10 minutes late today, thanks for waiting!"
    )
    desk.get_by_test_id("queue-message-send").click()
    expect(second.get_by_test_id("consultant-message")).to_be_visible()
    assert second.evaluate(FITS_WIDTH)
    picture(second, shots / "call-waiting.png")

    lobby = new_page(viewport=LAPTOP)
    lobby.goto("/")
    cards = lobby.get_by_test_id("consultant-card")
    expect(cards).to_have_count(3)
    expect(cards.filter(has_text="Ada Lovelace")).to_contain_text("2 waiting")
    expect(cards.filter(has_text="Grace Hopper")).to_have_attribute(
        "data-status", "away"
    )
    picture(lobby, shots / "lobby.png")

    expect(queue_items(desk)).to_have_count(2)
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(first, "in-call")
    expect_state(desk, "in-call")
    expect_media_flowing(first, "video")
    expect_media_flowing(desk, "video")
    send_chat(first, "Hello! Thanks for taking my call.")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Thanks")
    send_chat(desk, "Hello Marie, let's look at your proof.")
    expect(first.get_by_test_id("chat-log")).to_contain_text("your proof")
    picture(first, shots / "call-in-call.png")
    picture(desk, shots / "desk.png")

    # Refused, Blaise is not stranded: a colleague, keeping the place in line.
    queue_items(desk).first.get_by_label(re.compile("Reason for refusing")).fill(
        "Sorry, I only take maths proofs today."
    )
    queue_items(desk).first.get_by_test_id("refuse").click()
    expect_state(second, "refused")
    expect(second.get_by_test_id("move-to")).to_have_count(1)
    assert second.evaluate(FITS_WIDTH)
    picture(second, shots / "call-refused.png")

    for page in (lobby, first, desk):
        page.set_viewport_size(PHONE)
        assert page.evaluate(FITS_WIDTH), page.url
    lobby.goto("/accounts/login/")
    assert lobby.evaluate(FITS_WIDTH)


def test_a_caller_waiting_in_korean(new_page, demo, shots):
    open_desk(new_page(viewport=LAPTOP), "ada")
    first = open_call_page(new_page(viewport=PHONE, locale="ko-KR"), "ada")
    first.get_by_test_id("caller-name").fill("김민지")
    first.get_by_test_id("caller-join").click()
    expect_state(first, "queued")
    expect(first.get_by_test_id("queue-eta")).to_contain_text("예상 대기 시간")
    assert first.evaluate(FITS_WIDTH)
    picture(first, shots / "call-waiting-ko.png")


def a_week_of_history(ada, grace):
    """A plausible week for the analytics page: waits, talks, a few that gave
    up or failed, measured quality and ratings (deterministic, not random)."""
    from datetime import timedelta

    from django.utils import timezone

    from consult.models import CallFeedback, CallQuality, Consultation

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    outcomes = ["completed"] * 7 + ["abandoned", "refused", "failed"]
    for n in range(60):
        consultant = ada if n % 3 else grace
        requested = now - timedelta(hours=2 + n * 2.5)
        outcome = outcomes[n % len(outcomes)]
        wait = 20 + (n * 37) % 400
        served = outcome in ("completed", "failed")
        accepted = requested + timedelta(seconds=wait) if served else None
        media = (
            accepted + timedelta(seconds=1 + n % 3) if outcome == "completed" else None
        )
        ended = (media or accepted or requested) + timedelta(
            seconds=120 + (n * 53) % 900 if media else wait
        )
        call = Consultation.objects.create(
            consultant=consultant,
            caller_name=f"Caller {n}",
            requested_at=requested,
            accepted_at=accepted,
            media_connected_at=media,
            ended_at=ended,
            outcome=outcome,
            end_reason="Out of scope" if outcome == "refused" else "",
        )
        if media:
            CallQuality.objects.create(
                consultation=call,
                relayed=n % 5 == 0,
                rtt_histogram={str(40 + (n * 17) % 200): 4},
                loss_sum_pct=(n % 4) * 1.5,
                loss_samples=2,
                in_kbps_sum=900 + (n * 71) % 1500,
                kbps_samples=1,
            )
            CallFeedback.objects.create(consultation=call, rating=5 - (n % 4) // 2)


def test_the_operations_board_and_analytics(new_page, demo, shots, django_db_blocker):
    from tests.browser.test_operations import make_lead, open_board

    def setup():
        a_week_of_history(
            Consultant.objects.get(slug="ada"), Consultant.objects.get(slug="grace")
        )
        # A consultant of her own: the first test's call may still hold Ada
        # (her caller's page closed, within its grace).
        if not Consultant.objects.filter(slug="mary").update(is_active=True):
            make_consultant(
                "mary",
                name="Mary Somerville",
                title="Astronomy tutor",
                presence="offline",
            )
        return make_lead("screenshot-lead")

    with django_db_blocker.unblock():
        lead = off_the_loop(setup)
    desk = open_desk(new_page(viewport=LAPTOP), "mary")
    open_desk(new_page(viewport=LAPTOP), "grace")
    first = open_call_page(new_page(viewport=LAPTOP), "mary")
    join(first, "Marie Curie", reason="Help with a proof by induction, please.")
    second = open_call_page(new_page(viewport=LAPTOP), "mary")
    join(second, "Blaise Pascal", reason="Probability homework", audio_only=True)
    expect(queue_items(desk)).to_have_count(2)
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(first, "in-call")

    board = open_board(new_page(viewport=LAPTOP), lead.username)
    expect(board.get_by_test_id("ops-call")).to_have_count(1)
    expect(board.get_by_test_id("ops-queue-item")).to_have_count(1)
    picture(board, shots / "ops-board.png")

    board.goto("/admin/ops/analytics/")
    expect(board.get_by_test_id("analytics-plot").first).to_be_visible()
    picture(board, shots / "ops-analytics.png")
