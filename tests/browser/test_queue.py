"""The queue as callers and the desk see it: places, refusals, cancels, markup."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_the_loop
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    join,
    open_call_page,
    open_desk,
    queue_items,
)
from tests.factories import make_consultant

pytestmark = pytest.mark.browser


def test_second_caller_sees_position_two_then_one(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    first = open_call_page(new_page(), consultant.slug)
    join(first, "First")
    # Next with the consultant free; behind them, no history to go by.
    expect(first.get_by_test_id("queue-eta")).to_have_text(re.compile("any moment now"))
    second = open_call_page(new_page(), consultant.slug)
    join(second, "Second")
    expect(second.get_by_test_id("queue-position")).to_have_text("2")
    expect(second.get_by_test_id("queue-eta")).to_have_text(re.compile("not known yet"))

    desk.get_by_test_id("desk-accept-next").click()

    expect(second.get_by_test_id("queue-position")).to_have_text("1")
    expect_state(second, "queued")
    expect_state(first, "in-call")


def test_refusal_reason_reaches_the_caller(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, "Refused Rita")
    item = queue_items(desk).filter(has_text="Refused Rita")
    item.get_by_label("Reason for refusing").fill("I only take tax questions today")
    item.get_by_test_id("refuse").click()

    expect_state(caller, "refused")
    expect(caller.get_by_text("I only take tax questions today")).to_be_visible()
    expect(caller.get_by_role("link", name="Back to the lobby")).to_be_visible()
    expect(queue_items(desk)).to_have_count(0)


def test_a_refused_caller_sees_who_else_is_online_and_can_go_there(
    new_page, consultant, django_db_blocker
):
    with django_db_blocker.unblock():
        colleague = off_the_loop(
            make_consultant, f"{consultant.slug}-colleague", presence="offline"
        )
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, "Moving Mia")
    queue_items(desk).first.get_by_test_id("refuse").click()
    expect_state(caller, "refused")

    # The list follows the lobby: a colleague who comes online after the
    # refusal still shows.
    colleague_desk = open_desk(new_page(), colleague.slug)
    later = open_call_page(new_page(), colleague.slug)
    join(later, "Later Lin")
    move = caller.get_by_test_id("move-options").locator(
        f'[data-testid="move-to"][data-slug="{colleague.slug}"]'
    )
    expect(move).to_contain_text(colleague.name)
    move.click()

    # One click: queued there at once, ahead of Lin who joined after Mia.
    caller.wait_for_url(f"**/call/{colleague.slug}/")
    expect_state(caller, "queued")
    expect(caller.get_by_test_id("queue-position")).to_have_text("1")
    expect(later.get_by_test_id("queue-position")).to_have_text("2")
    expect(queue_items(colleague_desk).first).to_contain_text("Moving Mia")
    expect(queue_items(colleague_desk).first).to_contain_text(consultant.name)


def test_cancel_removes_the_caller_from_the_desk_queue_and_they_may_rejoin(
    new_page, consultant
):
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, "Cancelling Carl")
    expect(queue_items(desk)).to_have_count(1)
    expect(desk).to_have_title(re.compile(r"^\(1\) "))

    caller.get_by_test_id("caller-cancel").click()

    expect_state(caller, "idle")
    expect(queue_items(desk)).to_have_count(0)
    expect(desk).to_have_title(re.compile(r"^Desk"))

    # The caller may join again, camera and all.
    join(caller, "Cancelling Carl")
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(caller, "in-call")
    expect_media_flowing(desk, "video")


def test_a_caller_name_with_markup_is_shown_as_text_on_the_desk(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    alerts = []
    desk.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    name = "<img src=x onerror=alert(1)>"
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, name, reason="<b>bold?</b>")

    item = queue_items(desk).first
    expect(item).to_contain_text(name)
    expect(item).to_contain_text("<b>bold?</b>")
    assert (
        desk.locator(
            '[data-testid="desk-queue"] img, [data-testid="desk-queue"] b'
        ).count()
        == 0
    )
    assert alerts == []


def test_lobby_cards_follow_the_consultant_live(new_page, consultant):
    lobby = new_page()
    lobby.goto("/")
    card = lobby.locator(
        f'[data-testid="consultant-card"][data-slug="{consultant.slug}"]'
    )
    expect(card).to_have_attribute("data-status", "offline")

    desk = open_desk(new_page(), consultant.slug)
    expect(card).to_have_attribute("data-status", "online")
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, "Lobby Watcher")
    expect(card).to_contain_text("1 waiting")

    desk.get_by_test_id("desk-status").select_option("away")
    expect(card).to_have_attribute("data-status", "away")
    card.click()
    lobby.wait_for_url(f"**/call/{consultant.slug}/")


def test_desk_accepts_a_chosen_caller_and_the_other_keeps_waiting(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    first = open_call_page(new_page(), consultant.slug)
    join(first, "First Fay")
    second = open_call_page(new_page(), consultant.slug)
    join(second, "Second Sam")

    queue_items(desk).filter(has_text="Second Sam").get_by_test_id("accept").click()

    expect_state(second, "in-call")
    expect_state(first, "queued")
    expect(first.get_by_test_id("queue-position")).to_have_text("1")
    desk.get_by_test_id("hangup").click()
    expect_state(second, "ended")
    expect(second.get_by_text(f"{consultant.name} ended the call.")).to_be_visible()
    expect_state(desk, "ended")
    expect(queue_items(desk)).to_have_count(1)


def test_consultant_logs_out_from_the_desk(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)

    desk.get_by_role("button", name="Log out").click()

    desk.wait_for_url("**/")
    expect(desk.get_by_role("link", name="Consultant login")).to_be_visible()
    desk.goto("/desk/")
    desk.wait_for_url("**/accounts/login/?next=/desk/")


def test_joining_an_offline_consultant_says_so_and_keeps_the_form(new_page, consultant):
    caller = open_call_page(new_page(), consultant.slug)
    caller.get_by_test_id("caller-name").fill("Too Early")

    caller.get_by_test_id("caller-join").click()

    expect(caller.get_by_role("alert")).to_contain_text("offline right now")
    expect_state(caller, "idle")
    expect(caller.get_by_test_id("caller-join")).to_be_enabled()


def test_a_right_to_left_name_is_isolated_wherever_the_desk_shows_it(
    new_page, consultant
):
    desk = open_desk(new_page(), consultant.slug)
    name = "\u05e9\u05e8\u05d4 42"  # Hebrew, then digits: reorders text around it
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, name)

    item = queue_items(desk).first
    expect(item).to_contain_text(name)
    isolation = item.locator("[data-name]").evaluate(
        "element => getComputedStyle(element).unicodeBidi"
    )
    assert isolation == "isolate"
    # In a sentence (the refusal field's label) it stands in a <bdi> of its own.
    assert item.locator("[data-refuse-label] bdi").text_content() == name


def test_word_from_the_consultant_reaches_waiting_callers_as_text(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    early = open_call_page(new_page(), consultant.slug)
    join(early, "Early Eve")
    note = "<b>Running late</b>, back at 14:00"

    desk.get_by_test_id("queue-message-input").fill(note)
    desk.get_by_test_id("queue-message-send").click()

    message = early.get_by_test_id("consultant-message")
    expect(message).to_have_text(re.compile(re.escape(note)))
    expect(message.locator("b")).to_have_count(0)
    # Whoever joins later is told too; clearing takes it away from everyone.
    late = open_call_page(new_page(), consultant.slug)
    join(late, "Late Lou")
    expect(late.get_by_test_id("consultant-message")).to_have_text(
        re.compile(re.escape(note))
    )
    desk.get_by_role("button", name="Clear").click()
    for caller in (early, late):
        expect(caller.get_by_test_id("consultant-message")).to_be_hidden()


# Records each notification the page shows (the real one is still shown).
SPY_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = class extends window.Notification {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push(title);
  }
};
"""


def test_a_caller_in_another_tab_is_notified_when_their_turn_is_near(
    new_page, consultant
):
    desk = open_desk(new_page(), consultant.slug)
    first = open_call_page(new_page(), consultant.slug)
    join(first, "First Fay")
    second = new_page(permissions=["notifications"])
    second.add_init_script(SPY_NOTIFICATIONS)
    open_call_page(second, consultant.slug)
    join(second, "Second Sam")
    expect(second.get_by_test_id("queue-position")).to_have_text("2")
    second.get_by_label("Tell me when I am").select_option("1")
    second.get_by_test_id("notify-me").click()
    expect(
        second.get_by_text("We will tell you when your turn is near.")
    ).to_be_visible()
    assert second.evaluate("() => window.__notifications") == []

    desk.get_by_test_id("desk-accept-next").click()

    expect(second.get_by_test_id("queue-position")).to_have_text("1")
    second.wait_for_function("() => window.__notifications.length === 1")
    assert second.evaluate("() => window.__notifications") == ["You are next"]
    expect(second).to_have_title(re.compile(r"^\(You are next\) "))


def test_a_transferred_caller_follows_to_the_colleague_with_the_note(
    new_page, consultant, django_db_blocker
):
    with django_db_blocker.unblock():
        colleague = off_the_loop(
            make_consultant, f"{consultant.slug}-next", presence="offline"
        )
    colleague_desk = open_desk(new_page(), colleague.slug)
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, "Handed Hal")
    item = queue_items(desk).first
    item.get_by_text("Transfer…").click()
    item.get_by_label("To").select_option(colleague.slug)
    item.get_by_label("Note for them").fill("Needs the <i>pension</i> expert")
    item.get_by_test_id("transfer").click()

    caller.wait_for_url(f"**/call/{colleague.slug}/")
    expect_state(caller, "queued")
    expect(caller.get_by_test_id("queue-position")).to_have_text("1")
    moved = queue_items(colleague_desk).first
    expect(moved).to_contain_text("Handed Hal")
    expect(moved).to_contain_text(f"From {consultant.name}: Needs the <i>pension</i>")
    expect(queue_items(desk)).to_have_count(0)


def test_a_caller_asks_to_be_called_back_and_the_desk_clears_it(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    caller.get_by_test_id("caller-name").fill("Callback Cleo")
    caller.get_by_text("Rather be called back?").click()
    caller.get_by_label("Phone or e-mail").fill("+82 10 5555 0101")
    caller.get_by_test_id("callback-request").click()
    expect(caller.get_by_text("you will be called back")).to_be_visible()

    entry = desk.get_by_test_id("callback-list").get_by_role("listitem")
    expect(entry).to_contain_text("Callback Cleo")
    expect(entry).to_contain_text("+82 10 5555 0101")
    entry.get_by_role("button", name=re.compile("Done")).click()
    expect(desk.get_by_test_id("callback-list")).to_be_hidden()
