"""The call page under admission control: a `try_later` is said in words, and
the page joins again by itself after the hint, so nobody is left stranded."""

import itertools
import json
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import page_maker, suite_env
from tests.browser.pages import expect_state, open_call_page

pytestmark = pytest.mark.browser


@pytest.fixture
def busy_app(app, workdir, redis_url, database):
    """A second app server that always finds itself saturated: any lag at all
    is over a bound of a microsecond, and never under half of it again."""
    from tests.live import Server

    env = suite_env(
        workdir,
        redis_url,
        database,
        CHANNEL_PREFIX="browser",
        CONSULT_ADMISSION_LAG_MS="0.001",
        CONSULT_ADMISSION_RETRY_SECONDS="1",
    )
    server = Server("daphne-busy", workdir, env)
    server.start()
    yield server.origin
    server.stop()


def test_a_join_answered_try_later_is_explained_and_sent_again(
    chromium, busy_app, consultant
):
    with page_maker(chromium, busy_app) as make:
        caller = make()
        joins = []
        caller.on(
            "websocket",
            lambda ws: ws.on(
                "framesent",
                lambda payload: '"join"' in str(payload) and joins.append(time.time()),
            ),
        )
        answers = []
        caller.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda payload: answers.append(json.loads(payload)),
            ),
        )
        open_call_page(caller, consultant.slug)
        caller.get_by_test_id("caller-name").fill("Patient Pat")
        caller.get_by_test_id("caller-join").click()

        error = caller.locator("[data-join-error]")
        expect(error).to_contain_text("very busy")
        # After the hint (1 s) and its jitter (up to 0.5 s), the same join again.
        deadline = time.monotonic() + 10
        while len(joins) < 3 and time.monotonic() < deadline:
            caller.wait_for_timeout(100)
        assert len(joins) >= 3, joins
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(joins))
        refusals = [f for f in answers if f.get("code") == "try_later"]
        assert refusals and refusals[0]["retry_after"] == 1
        # Still joining, the form not given up on: no error state, no ended call.
        expect_state(caller, "idle")
        expect(error).to_contain_text("very busy")


def test_a_desk_turned_away_says_so_and_opens_again_after_the_hint(
    chromium, busy_app, consultant
):
    from tests.factories import PASSWORD

    with page_maker(chromium, busy_app) as make:
        desk = make()
        opened = []
        desk.on("websocket", lambda ws: opened.append(time.time()))
        desk.goto("/desk/")
        desk.fill("#id_username", consultant.slug)
        desk.fill("#id_password", PASSWORD)
        desk.get_by_role("button", name="Log in").click()
        desk.wait_for_url("**/desk/")

        expect(desk.locator("[data-desk-error]")).to_contain_text("very busy")
        # Reconnects after the hint (1 s) plus jitter, not the usual back-off
        # of half a second, and keeps trying while the server is saturated.
        deadline = time.monotonic() + 10
        while len(opened) < 3 and time.monotonic() < deadline:
            desk.wait_for_timeout(100)
        assert len(opened) >= 3, opened
        assert all(b - a >= 0.9 for a, b in itertools.pairwise(opened))
        expect(desk.get_by_test_id("desk-status")).to_be_disabled()
