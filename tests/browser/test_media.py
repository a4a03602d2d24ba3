"""A caller whose browser refuses the camera is told so, and can still call."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, TRACK_PEERS
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    inbound,
    join,
    open_call_page,
    open_desk,
)

pytestmark = pytest.mark.browser
# Without the fake permission prompt, headless Chromium refuses the camera. A
# page without camera permission hides its addresses behind mDNS names, which
# nothing resolves in a loopback-only namespace: show them as on a real network.
REFUSING_ARGS = [
    *(a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"),
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@pytest.fixture
def refusing_page(chromium, app):
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=REFUSING_ARGS
    )
    context = browser.new_context(base_url=app)
    context.add_init_script(TRACK_PEERS)
    yield context.new_page()
    browser.close()


def test_refused_camera_is_explained_and_the_caller_still_sees_the_consultant(
    refusing_page, new_page, consultant
):
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(refusing_page, consultant.slug)
    expect(caller.get_by_role("alert")).to_contain_text("was refused")

    join(caller, "No Camera Nora")
    desk.get_by_test_id("desk-accept-next").click()

    expect_state(caller, "in-call")
    expect_state(desk, "in-call")
    expect_media_flowing(caller, "video")
    assert inbound(desk)["video"] is None
