"""The caller's page against a server of its own with short join-limit timings:
the still-there question appears, answering keeps the place, silence loses it;
and a join to a busy queue solves ALTCHA's proof of work in the page."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_the_loop, page_maker, suite_env
from tests.browser.pages import expect_state, join, open_call_page, open_desk
from tests.live import Server

pytestmark = pytest.mark.browser

ASK_AFTER = 2
ANSWER_WITHIN = 4


@pytest.fixture(scope="module")
def quick_app(app, workdir, redis_url, database):
    """A second daphne on the suite's database, Redis and collected static
    files, asking waiters after 2 s, and taking any queue with a caller in it
    for one under pressure."""
    env = suite_env(
        workdir,
        redis_url,
        database,
        CHANNEL_PREFIX="browser-still",
        CONSULT_HEARTBEAT_SECONDS="0.5",
        CONSULT_STILL_THERE_AFTER_SECONDS=str(ASK_AFTER),
        CONSULT_STILL_THERE_ANSWER_SECONDS=str(ANSWER_WITHIN),
        CONSULT_PRESSURE_ADDRESSES="1",
        CONSULT_PRESSURE_SHARE="0.01",
        CONSULT_JOIN_CHALLENGE_MAX_NUMBER="20000",
        CONSULT_MAX_SOCKETS_PER_ADDRESS="1000",
        CONSULT_MAX_WAITING_PER_ADDRESS="1000",
    )
    server = Server("daphne-still-there", workdir, env)
    server.start()
    yield server.origin
    server.stop()
    errors = [line for line in server.log_text().splitlines() if "Traceback" in line]
    assert not errors, f"the app logged errors:\n{server.log_tail(5000)}"


@pytest.fixture
def quick_page(chromium, quick_app):
    """Pages on `quick_app` (`page_maker`)."""
    with page_maker(chromium, quick_app) as make:
        yield make


def test_the_still_there_question_appears_and_answering_keeps_the_place(
    quick_page, consultant
):
    open_desk(quick_page(), consultant.slug)
    caller = open_call_page(quick_page(), consultant.slug)
    join(caller, "Patient Pat")
    question = caller.get_by_role("alertdialog", name="Are you still there?")

    expect(question).to_be_visible(timeout=(ASK_AFTER + 5) * 1000)
    answer = question.get_by_role("button", name="I'm still here")
    # It has the focus: a keyboard answers it at once.
    expect(answer).to_be_focused()
    caller.keyboard.press("Enter")

    expect(question).to_be_hidden()
    # Past the first question's deadline, still in the queue: asked again later.
    caller.wait_for_timeout((ANSWER_WITHIN + 1) * 1000)
    expect_state(caller, "queued")
    expect(question).to_be_visible(timeout=(ASK_AFTER + 5) * 1000)
    answer.click()
    expect(question).to_be_hidden()
    expect_state(caller, "queued")


def test_without_an_answer_the_place_is_given_up(quick_page, consultant):
    open_desk(quick_page(), consultant.slug)
    caller = open_call_page(quick_page(), consultant.slug)
    join(caller, "Gone Gary")
    question = caller.get_by_test_id("still-there")
    expect(question).to_be_visible(timeout=(ASK_AFTER + 5) * 1000)

    expect_state(caller, "idle", timeout=(ANSWER_WITHIN + 5) * 1000)
    expect(question).to_be_hidden()
    expect(caller.get_by_test_id("call-state")).to_contain_text("still there")


def test_a_join_to_a_busy_queue_solves_the_proof_of_work_in_the_page(
    quick_page, consultant, django_db_blocker
):
    from consult.models import Ticket

    open_desk(quick_page(), consultant.slug)
    first = open_call_page(quick_page(), consultant.slug)
    join(first, "First Fay")
    # One caller from this address holds the queue's whole share: the next
    # join needs a proof of work, which ALTCHA's widget solves in workers.
    second = quick_page()
    frames = []
    second.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)),
    )
    open_call_page(second, consultant.slug)
    join(second, "Second Sam")

    expect(second.get_by_test_id("queue-position")).to_have_text("2")
    assert any('"challenge_required"' in str(frame) for frame in frames), frames
    with django_db_blocker.unblock():
        waiting = off_the_loop(
            lambda: Ticket.objects.filter(
                consultant__slug=consultant.slug, state="waiting"
            ).count()
        )
    assert waiting == 2
