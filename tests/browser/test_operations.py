"""The operations room in real Chromium: a call's measured quality and the
caller's rating reach the history; the live board follows joins and ends within
a second, and its end-call action reaches both pages."""

import re
import time
from itertools import count

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_the_loop, suite_env
from tests.browser.pages import expect_media_flowing, expect_state, join, open_call_page
from tests.browser.test_call import connect_call
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

_leads = count(1)
# The board polls every 0.8 s: a change shows within a second, with slack for
# the poll's own request and Playwright's checks.
WITHIN_A_SECOND_MS = 1_500


def call_record(consultant) -> dict:
    from consult.models import Consultation

    call = Consultation.objects.filter(consultant=consultant).latest("requested_at")
    quality = getattr(call, "quality", None)
    feedback = getattr(call, "feedback", None)
    return {
        "id": call.pk,
        "outcome": call.outcome,
        "samples": quality.samples if quality else 0,
        "accept_to_media_ms": quality.accept_to_media_ms if quality else None,
        "candidates": (quality.caller_candidate, quality.consultant_candidate)
        if quality
        else None,
        "relayed": quality.relayed if quality else None,
        "rtt_worst_ms": quality.rtt_worst_ms if quality else None,
        "rating": (feedback.rating, feedback.comment) if feedback else None,
        "flag": feedback.flag if feedback else "",
    }


def wait_for_record(django_db_blocker, consultant, ok, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        with django_db_blocker.unblock():
            record = off_the_loop(call_record, consultant)
        if ok(record) or time.monotonic() > deadline:
            return record
        time.sleep(0.3)


def test_a_real_call_reports_its_quality_and_the_callers_rating_lands(
    new_page, consultant, django_db_blocker
):
    desk, caller = connect_call(new_page, consultant)
    expect_media_flowing(caller, "video")

    record = wait_for_record(
        django_db_blocker,
        consultant,
        lambda r: r["samples"] >= 4 and all(r["candidates"] or ("",)),
    )
    assert record["samples"] >= 4, record
    # Loopback: both sides' selected pair is host to host, not relayed.
    assert record["candidates"] == ("host", "host"), record
    assert record["relayed"] is False
    # From the desk's accept to media flowing on loopback: well under 10 s.
    assert 0 < record["accept_to_media_ms"] < 10_000, record
    assert record["rtt_worst_ms"] is not None and record["rtt_worst_ms"] < 1_000

    desk.get_by_test_id("hangup").click()
    expect_state(caller, "ended")
    rating = caller.get_by_test_id("feedback-rating")
    expect(rating).to_be_focused()
    rating.select_option("4")
    caller.get_by_test_id("feedback-comment").fill("Clear <b>answers</b>")
    caller.get_by_test_id("feedback-send").click()
    expect(caller.get_by_text("Thank you for your feedback.")).to_be_visible()
    record = wait_for_record(django_db_blocker, consultant, lambda r: r["rating"])
    assert record["rating"] == (4, "Clear <b>answers</b>")

    # The consultant flags the call they just ended.
    desk.locator("[data-call-flag-choice]").select_option("audio")
    desk.get_by_role("button", name="Flag the call").click()
    expect(desk.get_by_text("Flagged. Thank you.")).to_be_visible()
    record = wait_for_record(django_db_blocker, consultant, lambda r: r["flag"])
    assert record["flag"] == "audio"


def make_lead(username: str):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_staff=True
    )
    for codename in ("view_consultation", "operate_board"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def open_board(page, username: str):
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto("/admin/ops/board/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/ops/board/")
    return page


def test_the_board_follows_a_join_and_an_end_and_ends_a_call(
    new_page, consultant, django_db_blocker
):
    with django_db_blocker.unblock():
        lead = off_the_loop(make_lead, f"lead{next(_leads)}")
    board = open_board(new_page(viewport={"width": 800, "height": 1100}), lead.username)
    card = board.locator(
        f'[data-testid="ops-consultant"][data-slug="{consultant.slug}"]'
    )
    expect(card).to_have_attribute("data-status", "offline")

    desk, _ = connect_call(new_page, consultant)
    expect(card.get_by_test_id("ops-call")).to_have_attribute(
        "data-media", "connected", timeout=WITHIN_A_SECOND_MS
    )

    # A second caller joins: on the board within a second of being queued.
    second = open_call_page(new_page(), consultant.slug)
    join(second, "Di Second")
    item = card.get_by_test_id("ops-queue-item")
    expect(item).to_have_count(1, timeout=WITHIN_A_SECOND_MS)
    expect(item).to_contain_text("Di Second")

    # The desk ends the call: gone from the board within a second.
    desk.get_by_test_id("hangup").click()
    expect_state(desk, "ended")
    expect(card.get_by_test_id("ops-call")).to_have_count(0, timeout=WITHIN_A_SECOND_MS)

    # The board ends the next call, after its confirmation; both pages hear.
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(second, "in-call")
    call = card.get_by_test_id("ops-call")
    expect(call).to_have_count(1, timeout=WITHIN_A_SECOND_MS)
    questions = []

    def confirm(dialog):
        questions.append(dialog.message)
        dialog.accept()

    board.on("dialog", confirm)
    call.get_by_test_id("ops-end-call").click()
    expect_state(second, "ended")
    expect_state(desk, "ended")
    expect(second.get_by_text(re.compile(r"ended by .*staff"))).to_be_visible()
    assert questions and "Di Second" in questions[0]
    expect(call).to_have_count(0, timeout=WITHIN_A_SECOND_MS)
    expect(board.locator("[data-board-message]")).to_have_text("The call was ended.")


# --- a relay-only call through the test coturn ------------------------------------

TURN_PORT = 34790
TURN_SECRET = "browser-turn-secret"
# Every connection of the page may use relayed candidates only.
RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config = {}, ...rest) {
      super({ ...config, iceTransportPolicy: "relay" }, ...rest);
    }
  };
})();
"""


@pytest.fixture
def turn_app(app, workdir, redis_url, database):
    """A second app server whose `hello` hands out credentials for a coturn
    (deploy/turnserver.conf, loopback peers allowed) running in this namespace."""
    from tests.live import Server
    from tests.turn.relay_probe import start_coturn, udp_port_bound

    turn_dir = workdir / "coturn"
    turn_dir.mkdir(exist_ok=True)
    plan = {"secret": TURN_SECRET, "realm": "consult.test", "port": TURN_PORT}
    coturn = start_coturn(plan, str(turn_dir))
    deadline = time.monotonic() + 10
    while not udp_port_bound(TURN_PORT):
        assert coturn.poll() is None and time.monotonic() < deadline, "no coturn"
        time.sleep(0.05)
    env = suite_env(
        workdir,
        redis_url,
        database,
        CHANNEL_PREFIX="browser",
        CONSULT_MAX_SOCKETS_PER_ADDRESS="1000",
        CONSULT_MAX_WAITING_PER_ADDRESS="1000",
        CONSULT_JOIN_BURST_PER_ADDRESS="1000",
        CONSULT_STUN_URLS="",
        CONSULT_TURN_URLS=f"turn:127.0.0.1:{TURN_PORT}?transport=udp",
        CONSULT_TURN_SECRET=TURN_SECRET,
    )
    server = Server("daphne-turn", workdir, env)
    server.start()
    yield server.origin
    server.stop()
    coturn.terminate()
    coturn.wait(timeout=10)


def test_a_relay_only_call_is_recorded_as_relayed(
    chromium, turn_app, consultant, django_db_blocker
):
    from tests.browser.conftest import page_maker

    with page_maker(chromium, turn_app) as make:

        def relay_page():
            page = make()
            page.context.add_init_script(RELAY_ONLY)
            return page

        desk, caller = connect_call(relay_page, consultant)
        expect_media_flowing(caller, "video")
        record = wait_for_record(
            django_db_blocker,
            consultant,
            lambda r: r["samples"] >= 2 and all(r["candidates"] or ("",)),
        )
        assert record["candidates"] == ("relay", "relay"), record
        assert record["relayed"] is True
        desk.get_by_test_id("hangup").click()
        expect_state(caller, "ended")
