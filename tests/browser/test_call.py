"""A whole call between a caller page and a desk, in real Chromium."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import off_the_loop
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    inbound,
    join,
    open_call_page,
    open_desk,
    queue_items,
    send_chat,
)
from tests.factories import make_consultant

pytestmark = pytest.mark.browser


def sent_tracks_enabled(page) -> dict:
    """Whether each track the page's live connection sends is enabled, by kind."""
    return page.evaluate(
        """() => {
          const live = window.__peers.filter((p) => p.connectionState !== "closed");
          const pc = live.at(-1);
          const tracks = pc.getSenders().map((s) => s.track).filter(Boolean);
          return Object.fromEntries(tracks.map((t) => [t.kind, t.enabled]));
        }"""
    )


def connect_call(new_page, consultant, **join_fields):
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, "Bo Caller", reason="A question about my bill", **join_fields)
    expect(caller.get_by_test_id("queue-position")).to_have_text("1")
    expect(queue_items(desk)).to_have_count(1)
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(desk, "in-call")
    expect_state(caller, "in-call")
    return desk, caller


def test_call_connects_with_video_both_ways_chat_and_hang_up(new_page, consultant):
    desk, caller = connect_call(new_page, consultant)

    expect_media_flowing(caller, "video")
    expect_media_flowing(desk, "video")

    send_chat(caller, "Hello from the caller")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Hello from the caller")
    send_chat(desk, "Hello from the desk")
    expect(caller.get_by_test_id("chat-log")).to_contain_text("Hello from the desk")

    caller.get_by_role("button", name="Mute").click()
    caller.get_by_role("button", name="Camera off").click()
    assert sent_tracks_enabled(caller) == {"audio": False, "video": False}
    caller.get_by_role("button", name="Unmute").click()
    assert sent_tracks_enabled(caller) == {"audio": True, "video": False}

    caller.get_by_test_id("hangup").click()
    expect_state(caller, "ended")
    expect_state(desk, "ended")
    expect(desk.get_by_test_id("desk-accept-next")).to_be_visible()


def test_audio_only_call_carries_audio_and_no_video(new_page, consultant):
    desk, caller = connect_call(new_page, consultant, audio_only=True)

    expect_media_flowing(caller, "audio")
    expect_media_flowing(desk, "audio")
    assert inbound(caller)["video"] is None
    assert inbound(desk)["video"] is None
    # It reads as an audio call: who is there and a level meter, not an empty
    # video frame saying "No call yet".
    for page, other in ((caller, consultant.name), (desk, "Bo Caller")):
        view = page.get_by_test_id("audio-call")
        expect(view).to_be_visible()
        expect(view).to_contain_text(other)
        expect(page.get_by_test_id("remote-video")).to_be_hidden()
        expect(page.get_by_text("No call yet")).to_be_hidden()
        # The fake microphone beeps: the other side's meter moves.
        page.wait_for_function(
            """() => document.querySelector('[data-level="remote"]').value > 0""",
            timeout=15_000,
        )


def test_a_caller_transferred_during_a_call_waits_for_the_colleague_first(
    new_page, consultant, django_db_blocker
):
    with django_db_blocker.unblock():
        colleague = off_the_loop(
            make_consultant, f"{consultant.slug}-expert", presence="offline"
        )
    expert = open_desk(new_page(), colleague.slug)
    desk, caller = connect_call(new_page, consultant)
    # Lou joins the colleague's queue after Bo joined Ada's.
    later = open_call_page(new_page(), colleague.slug)
    join(later, "Later Lou")

    panel = desk.locator("[data-call-transfer]")
    panel.get_by_text("Transfer to a colleague…").click()
    panel.get_by_label("To").select_option(colleague.slug)
    panel.get_by_label("Note for them").fill("Pension question")
    panel.get_by_test_id("transfer").click()

    expect_state(desk, "ended")
    caller.wait_for_url(f"**/call/{colleague.slug}/")
    expect_state(caller, "queued")
    expect(caller.get_by_test_id("queue-position")).to_have_text("1")
    expect(later.get_by_test_id("queue-position")).to_have_text("2")
    first = queue_items(expert).first
    expect(first).to_contain_text("Bo Caller")
    expect(first).to_contain_text(f"From {consultant.name}: Pension question")
