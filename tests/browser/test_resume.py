"""A reload keeps the caller's place, and brings a call back with media flowing."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import GRACE_SECONDS
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    join,
    open_call_page,
    open_desk,
    queue_items,
    send_chat,
    wait_until,
)
from tests.browser.test_call import connect_call

pytestmark = pytest.mark.browser


def test_reload_while_waiting_keeps_the_place(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    first = open_call_page(new_page(), consultant.slug)
    join(first, "First")
    second = open_call_page(new_page(), consultant.slug)
    join(second, "Second")
    ticket = queue_items(desk).nth(1).get_attribute("data-ticket")

    second.reload()

    expect_state(second, "queued")
    expect(second.get_by_test_id("queue-position")).to_have_text("2")
    expect(queue_items(desk)).to_have_count(2)
    expect(queue_items(desk).nth(1)).to_have_attribute("data-ticket", ticket)

    # The place leads to a real call, though the offer came from the old page.
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(first, "in-call")
    first.get_by_test_id("hangup").click()
    expect_state(desk, "ended")
    expect(second.get_by_test_id("queue-position")).to_have_text("1")
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(second, "in-call")
    expect_state(desk, "in-call")
    expect_media_flowing(second, "video")
    expect_media_flowing(desk, "video")


def test_reload_during_a_call_comes_back_in_call_with_media(new_page, consultant):
    desk, caller = connect_call(new_page, consultant)
    expect_media_flowing(desk, "video")
    send_chat(caller, "Before the reload")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Before the reload")

    caller.reload()

    expect_state(caller, "in-call")
    expect_state(desk, "in-call")
    expect_media_flowing(caller, "video")
    expect_media_flowing(desk, "video")
    # The conversation so far is still there.
    expect(caller.get_by_test_id("chat-log")).to_contain_text("Before the reload")
    send_chat(caller, "Back again")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Back again")


def test_desk_reload_during_a_call_comes_back_in_call_with_media(new_page, consultant):
    desk, caller = connect_call(new_page, consultant)
    send_chat(caller, "Said before the desk reloaded")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Said before")

    desk.reload()

    expect_state(desk, "in-call")
    expect_state(caller, "in-call")
    expect_media_flowing(desk, "video")
    expect_media_flowing(caller, "video")
    # The chat and the caller's reason survive the reload.
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Said before")
    expect(desk.locator("[data-current-reason]")).to_have_text(
        "A question about my bill"
    )
    # Over when the call is: nothing of it stays in the tab.
    desk.get_by_test_id("hangup").click()
    expect_state(desk, "ended")
    assert desk.evaluate("() => sessionStorage.length") == 0


def test_a_dropped_socket_during_a_call_reconnects_and_resumes(new_page, consultant):
    desk, caller = connect_call(new_page, consultant)

    caller.context.set_offline(True)
    caller.evaluate("window.__sockets.at(-1).close()")
    expect_state(caller, "reconnecting")
    expect_state(desk, "reconnecting")
    caller.context.set_offline(False)

    wait_until(caller, "() => window.__sockets.at(-1).readyState === WebSocket.OPEN")
    expect_state(caller, "in-call")
    expect_state(desk, "in-call")
    expect_media_flowing(caller, "video")
    expect_media_flowing(desk, "video")


def test_a_desk_gone_past_the_grace_period_ends_the_call_on_both_pages(
    new_page, consultant
):
    desk, caller = connect_call(new_page, consultant)

    desk.context.set_offline(True)
    desk.evaluate("window.__sockets.at(-1).close()")

    expect_state(caller, "ended", timeout=(GRACE_SECONDS + 10) * 1000)
    expect(
        caller.get_by_text(f"{consultant.name}'s connection was lost.")
    ).to_be_visible()
    desk.context.set_offline(False)
    expect_state(desk, "ended")
    expect(desk.get_by_test_id("desk-accept-next")).to_be_visible()


def test_a_call_that_ended_while_the_desk_was_away_leaves_nothing_in_the_tab(
    new_page, consultant
):
    desk, caller = connect_call(new_page, consultant)
    send_chat(caller, "Something private")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Something private")
    desk.goto("about:blank")
    caller.get_by_test_id("hangup").click()
    expect_state(caller, "ended")

    desk.goto("/desk/")
    expect(desk.get_by_test_id("desk-status")).to_be_enabled()
    wait_until(desk, "() => sessionStorage.length === 0")
