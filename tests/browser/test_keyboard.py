"""A whole consultation with the keyboard alone (Tab, Shift+Tab, Enter, Space and
typing): join, wait, take the call at the desk, chat, hang up. Focus always
lands somewhere visible, and the queue's live region speaks when the place
changes."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import expect_state, queue_items
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

FOCUSED = """
(selector) => {
  const element = document.activeElement;
  return Boolean(element && element.matches(selector) && element.checkVisibility());
}
"""
FOCUS_VISIBLE = """
() => {
  const element = document.activeElement;
  return element !== document.body && element.checkVisibility();
}
"""


def tab_to(page: Page, selector: str, *, back: bool = False, limit: int = 80) -> None:
    """Press Tab (Shift+Tab with `back`) until `selector` has the focus."""
    for _ in range(limit):
        if page.evaluate(FOCUSED, selector):
            return
        page.keyboard.press("Shift+Tab" if back else "Tab")
        assert page.evaluate(FOCUS_VISIBLE), "focus went to nothing visible"
    raise AssertionError(f"{selector} cannot be reached with the keyboard")


def hook(name: str) -> str:
    return f'[data-testid="{name}"]'


def join_by_keyboard(page: Page, slug: str, name: str) -> None:
    page.goto(f"/call/{slug}/")
    expect_state(page, "idle")
    expect(page.locator(hook("caller-join"))).to_be_enabled()
    tab_to(page, hook("caller-name"))
    page.keyboard.type(name)
    tab_to(page, hook("caller-join"))
    page.keyboard.press("Enter")
    expect_state(page, "queued")
    # Focus follows to the waiting panel, not left on the hidden form.
    assert page.evaluate(FOCUSED, "[data-waiting]")


def test_a_consultation_with_the_keyboard_alone(new_page, consultant):
    desk = new_page()
    desk.goto("/desk/")
    tab_to(desk, "#id_username")
    desk.keyboard.type(consultant.slug)
    desk.keyboard.press("Tab")
    desk.keyboard.type(PASSWORD)
    desk.keyboard.press("Enter")
    desk.wait_for_url("**/desk/")
    expect(desk.get_by_test_id("desk-status")).to_be_enabled()

    first = new_page()
    join_by_keyboard(first, consultant.slug, "First Fay")
    second = new_page()
    join_by_keyboard(second, consultant.slug, "Second Sol")
    live = second.get_by_test_id("queue-live")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_contain_text("number 2")
    expect(queue_items(desk)).to_have_count(2)
    # The arrival is seen, not only heard.
    expect(desk.locator("[data-arrival]")).to_be_visible()

    # The desk takes the next caller: from wherever the focus is, back or forth.
    tab_to(desk, hook("desk-accept-next"), back=True)
    desk.keyboard.press("Space")
    expect_state(first, "in-call")
    expect_state(desk, "in-call")
    # The one still waiting hears the new place: the region's words changed.
    expect(live).to_contain_text("You are next")

    # In the call, focus went to the call's controls; the chat is a Tab away.
    assert first.evaluate(FOCUSED, "[data-call-controls], [data-call-controls] *")
    expect(first.get_by_test_id("chat-input")).to_be_enabled()
    tab_to(first, hook("chat-input"))
    first.keyboard.type("Hello by keyboard")
    first.keyboard.press("Enter")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Hello by keyboard")

    tab_to(first, hook("hangup"), back=True)
    first.keyboard.press("Enter")
    expect_state(first, "ended")
    expect_state(desk, "ended")
    # After the end the focus goes to what comes next: the feedback form
    # (the end itself is announced by the assertive region).
    assert first.evaluate(FOCUSED, '[data-testid="feedback-rating"]')
