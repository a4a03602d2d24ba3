"""The consulting bot on someone else's site, in real Chromium (docs/embed.md).

The host pages come from a second web server, addressed as `localhost` while
the app is `127.0.0.1`: another origin and another site, as a shop and the app
would be. Their CSS is deliberately hostile.
"""

import json
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count

import pytest
from django.template.loader import render_to_string
from playwright.sync_api import Page, expect

from consult.embed_views import demo_host_permissions, demo_host_policy
from consult.models import Consultant, EmbedSite
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TRACK_PEERS,
    off_the_loop,
    page_maker,
)
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    join,
    open_desk,
    queue_items,
    send_chat,
    wait_until,
)
from tests.browser.test_screenshots import LAPTOP, PHONE, picture
from tests.browser.test_screenshots import shots as shots  # the fixture
from tests.factories import make_consultant
from tests.live import HOST, ROOT

pytestmark = pytest.mark.browser

EVENTS = ["queued", "position", "in-call", "ended", "refused"]
FITS_WIDTH = "() => document.documentElement.scrollWidth <= window.innerWidth"
# What a careless (or spiteful) site does to everything on its page.
HOSTILE_CSS = """
* { all: unset; }
html, body, div, h1, p { display: block; }
head, style, script { display: none; }
body { font: 40px/1 serif; color: #0f0; background: #300; transform: none; }
div, button, span { z-index: 2147483647 !important; }
button { display: none !important; }
iframe { display: none !important; }
.war { position: fixed; right: 0; bottom: 0; width: 60vw; height: 60vh;
       background: #ff0; z-index: 2147483647 !important; }
"""
RECORD_EVENTS = (
    "window.__events = [];"
    f"for (const name of {json.dumps(EVENTS)}) "
    "addEventListener(`consult:${name}`, (e) => __events.push([name, e.detail]));"
)
_hosts = count(1)


class HostSite:
    """Someone else's web server, at http://localhost:PORT: pages by path, and
    the app's static files (for the demo page's own CSS and script)."""

    def __init__(self):
        self.pages: dict[str, tuple[str, dict]] = {}
        self.server = ThreadingHTTPServer((HOST, 0), partial(_Handler, self))
        self.origin = f"http://localhost:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, html: str, headers: dict | None = None) -> str:
        self.pages[path] = (html, headers or {})
        return self.origin + path

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def __init__(self, site, *args, **kwargs):
        self.site = site
        super().__init__(*args, **kwargs)

    def do_GET(self):
        path = self.path.split("?")[0]
        headers = {}
        if path in self.site.pages:
            html, headers = self.site.pages[path]
            body, kind = html.encode(), "text/html; charset=utf-8"
        elif path.startswith("/static/") and ".." not in path:
            file = ROOT / "static" / path.removeprefix("/static/")
            if not file.is_file():
                return self.send_error(404)
            body = file.read_bytes()
            kind = "text/css" if file.suffix == ".css" else "text/javascript"
        else:
            return self.send_error(404)
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# As in a visitor's Chrome, a frame on another site gets storage of its own
# (partitioned by the top-level site), where the call page keeps its seat.
# Playwright turns partitioning off (microsoft/playwright#32230), and then
# Chromium denies the frame any storage: the default `new_page` browser is the
# one that tests that case. This later --disable-features replaces Playwright's list.
PARTITIONED_ARGS = [
    *CHROMIUM_ARGS,
    "--disable-features=AvoidUnnecessaryBeforeUnloadCheckSync,"
    "DestroyProfileOnBrowserClose,HttpsUpgrades,MediaRouter,PaintHolding",
]


@pytest.fixture(scope="module")
def partitioned_chromium(chromium):
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM, headless=True, args=PARTITIONED_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def visitor(partitioned_chromium, app):
    """Like `new_page`, in a browser whose third-party frames have storage."""
    with page_maker(partitioned_chromium, app) as make:
        yield make


@pytest.fixture
def host_site():
    site = HostSite()
    yield site
    site.close()


@pytest.fixture
def allow(django_db_blocker, database):
    """Put an origin on the allow-list, offering these consultants (none: all)."""

    def add(origin: str, *consultants: Consultant) -> None:
        def write():
            site = EmbedSite.objects.create(origin=origin, label=f"Host {origin}")
            site.consultants.set(consultants)

        with django_db_blocker.unblock():
            off_the_loop(write)

    return add


def hostile_page(app: str, *, snippet_attributes: str) -> str:
    return f"""<!doctype html>
<html><head><title>A hostile shop</title><link rel="icon" href="data:,">
<style>{HOSTILE_CSS}</style></head>
<body>
<h1>A shop whose CSS fights everyone</h1>
<p>Its own iframe is hidden by its own rule:</p>
<iframe class="own" src="about:blank"></iframe>
<div class="war">z-index war</div>
<script>{RECORD_EVENTS}</script>
<script src="{app}/embed.js" {snippet_attributes} async></script>
</body></html>"""


def open_shop(
    new_page, host_site, app, consultant, *, attributes: str | None = None, **options
) -> Page:
    """The hostile shop page with the snippet; its button shown."""
    if attributes is None:
        # Junk colour, corner and label fall back to the defaults.
        attributes = (
            f'data-consultant="{consultant.slug}" data-color="red;}}*{{x:y" '
            'data-corner="middle" data-label="   " data-lang="@@"'
        )
    url = host_site.serve(
        f"/shop{next(_hosts)}/", hostile_page(app, snippet_attributes=attributes)
    )
    page = new_page(**options)
    page.goto(url)
    expect(page.get_by_test_id("consult-launcher")).to_be_visible()
    return page


def frame_of(page: Page):
    """The widget's frame: a FrameLocator for its hooks, a Frame to evaluate in."""
    handle = page.get_by_test_id("consult-frame").element_handle()
    return page.frame_locator('[data-testid="consult-frame"]'), handle.content_frame()


def events(page: Page) -> list:
    return page.evaluate("window.__events")


def ready(frame) -> None:
    """The call page in the frame has run its scripts (they fill the form from
    what the tab remembers) and its socket said hello: it can be typed into."""
    expect(frame.get_by_test_id("caller-join")).to_be_enabled()


def open_widget(page: Page):
    page.get_by_test_id("consult-launcher").click()
    expect(page.get_by_test_id("consult-frame")).to_be_visible()
    return frame_of(page)


def test_widget_on_a_hostile_page_carries_a_whole_call(
    new_page, visitor, host_site, app, consultant, allow
):
    allow(host_site.origin, consultant)
    desk = open_desk(new_page(viewport=LAPTOP), consultant.slug)
    shop = open_shop(visitor, host_site, app, consultant, viewport=LAPTOP)

    # The hostile CSS reached neither the button nor its defaults.
    launcher = shop.get_by_test_id("consult-launcher")
    expect(launcher).to_have_text("Talk to a consultant")
    expect(launcher).to_have_css("background-color", "rgb(29, 95, 209)")
    box = launcher.bounding_box()
    assert box["width"] > 100 and box["height"] > 30
    assert LAPTOP["width"] - 40 < box["x"] + box["width"] <= LAPTOP["width"] - 10
    assert LAPTOP["height"] - 40 < box["y"] + box["height"] <= LAPTOP["height"] - 10
    expect(shop.locator("iframe.own")).to_be_hidden()
    # Nobody but the widget's own frame can make the page hear its events.
    shop.evaluate(
        """() => postMessage({consult: 1, type: "state", state: "queued",
                             position: 1}, "*")"""
    )

    frame, inner = open_widget(shop)
    expect_state(frame, "idle")
    ready(frame)
    join(frame, "Embedded Eve", reason="Which frame size?")
    expect(frame.get_by_test_id("queue-position")).to_have_text("1")
    expect(queue_items(desk)).to_have_count(1)
    expect(queue_items(desk).first).to_contain_text("Embedded Eve")

    desk.get_by_test_id("desk-accept-next").click()
    expect_state(frame, "in-call")
    expect_state(desk, "in-call")
    expect_media_flowing(inner, "video")
    expect_media_flowing(desk, "video")
    send_chat(frame, "Hello from the shop")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Hello from the shop")
    send_chat(desk, "Hello from the desk")
    expect(frame.get_by_test_id("chat-log")).to_contain_text("Hello from the desk")

    desk.get_by_test_id("hangup").click()
    expect_state(frame, "ended")
    wait_until(shop, "() => window.__events.length >= 3")
    assert events(shop) == [
        ["queued", {"position": 1}],
        ["in-call", {}],
        ["ended", {}],
    ]
    # The events carry nothing the visitor typed.
    assert "Eve" not in json.dumps(events(shop))


def test_position_refusal_and_the_picker_reach_the_host_page(
    new_page, host_site, app, consultant, allow
):
    allow(host_site.origin)
    desk = open_desk(new_page(), consultant.slug)
    ahead = open_shop(new_page, host_site, app, consultant)
    # No consultant named: the visitor picks one.
    shop = open_shop(new_page, host_site, app, consultant, attributes="")

    first, _ = open_widget(ahead)
    ready(first)
    join(first, "Ahead")
    frame, _ = open_widget(shop)
    frame.locator(
        f'[data-testid="consultant-card"][data-slug="{consultant.slug}"]'
    ).click()
    ready(frame)
    join(frame, "Second")
    expect(frame.get_by_test_id("queue-position")).to_have_text("2")

    expect(queue_items(desk)).to_have_count(2)

    first.get_by_test_id("caller-cancel").click()
    expect(frame.get_by_test_id("queue-position")).to_have_text("1")
    expect(queue_items(desk)).to_have_count(1)
    queue_items(desk).filter(has_text="Second").get_by_test_id("refuse").click()
    expect_state(frame, "refused")
    wait_until(shop, "() => window.__events.length >= 3")
    assert events(shop) == [
        ["queued", {"position": 2}],
        ["position", {"position": 1}],
        ["refused", {}],
    ]


def test_closing_asks_first_and_reopening_resumes_the_place(
    new_page, visitor, host_site, app, consultant, allow
):
    allow(host_site.origin, consultant)
    desk = open_desk(new_page(), consultant.slug)
    shop = open_shop(visitor, host_site, app, consultant)
    frame, _ = open_widget(shop)
    ready(frame)
    join(frame, "Closer")
    ticket = queue_items(desk).first.get_attribute("data-ticket")

    shop.get_by_role("button", name="Close", exact=True).click()
    expect(shop.get_by_text("You are in the queue")).to_be_visible()
    shop.get_by_role("button", name="Stay").click()
    expect_state(frame, "queued")

    shop.get_by_role("button", name="Close", exact=True).click()
    shop.get_by_role("button", name="Close anyway").click()
    expect(shop.get_by_test_id("consult-frame")).to_have_count(0)

    frame, _ = open_widget(shop)
    expect_state(frame, "queued")
    expect(queue_items(desk)).to_have_count(1)
    expect(queue_items(desk).first).to_have_attribute("data-ticket", ticket)
    # Back in the same place: the host page heard of it once.
    assert events(shop) == [["queued", {"position": 1}]]
    shop.evaluate("Consult.close()")
    expect(shop.get_by_text("You are in the queue")).to_be_visible()


def test_reload_of_the_host_page_gets_the_place_and_the_call_back(
    new_page, visitor, host_site, app, consultant, allow
):
    allow(host_site.origin, consultant)
    desk = open_desk(new_page(), consultant.slug)
    shop = open_shop(visitor, host_site, app, consultant)
    frame, _ = open_widget(shop)
    ready(frame)
    join(frame, "Reloader")
    ticket = queue_items(desk).first.get_attribute("data-ticket")

    shop.reload()
    frame, _ = frame_of_reopened(shop)
    expect_state(frame, "queued")
    expect(queue_items(desk).first).to_have_attribute("data-ticket", ticket)
    wait_until(shop, "() => window.__events.length >= 1")
    assert events(shop) == [["queued", {"position": 1}]]

    desk.get_by_test_id("desk-accept-next").click()
    expect_state(frame, "in-call")
    shop.reload()
    frame, inner = frame_of_reopened(shop)
    expect_state(frame, "in-call")
    expect_state(desk, "in-call")
    expect_media_flowing(inner, "video")
    expect_media_flowing(desk, "video")
    send_chat(frame, "Back after a reload")
    expect(desk.get_by_test_id("chat-log")).to_contain_text("Back after a reload")


def frame_of_reopened(page: Page):
    """After a reload while waiting or in a call, the widget reopens by itself."""
    expect(page.get_by_test_id("consult-frame")).to_be_visible()
    return frame_of(page)


def test_widget_fills_a_phone_screen_and_calls_without_frame_storage(
    new_page, host_site, app, consultant, allow
):
    """Playwright's Chromium denies the frame storage (see PARTITIONED_ARGS):
    the call still works."""
    allow(host_site.origin, consultant)
    desk = open_desk(new_page(), consultant.slug)
    shop = open_shop(
        new_page, host_site, app, consultant, viewport=PHONE, has_touch=True
    )

    frame, inner = open_widget(shop)
    box = shop.get_by_test_id("consult-frame").bounding_box()
    assert box["x"] == 0 and box["width"] == PHONE["width"]
    assert abs(box["y"] + box["height"] - PHONE["height"]) < 1
    expect_state(frame, "idle")
    ready(frame)
    assert inner.evaluate(FITS_WIDTH)
    join(frame, "Phone Pat", audio_only=True)
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(frame, "in-call")
    expect_media_flowing(inner, "audio")
    assert inner.evaluate(FITS_WIDTH)


def test_a_site_not_on_the_list_gets_no_button_and_cannot_frame_the_app(
    chromium, app, host_site, consultant, allow
):
    allow("https://the-real-shop.example", consultant)
    url = host_site.serve(
        "/elsewhere/",
        hostile_page(
            app, snippet_attributes=f'data-consultant="{consultant.slug}"'
        ).replace(
            "</body>",
            # One naming its own origin as the host, one naming none.
            f'<iframe id="forced" src="{app}/embed/call/{consultant.slug}/'
            f'?host={host_site.origin}"></iframe>'
            f'<iframe id="bare" src="{app}/embed/call/{consultant.slug}/"></iframe>'
            "</body>",
        ),
    )
    context = chromium.new_context(base_url=app)
    context.add_init_script(TRACK_PEERS)
    page = context.new_page()
    messages = []
    page.on("console", lambda message: messages.append((message.type, message.text)))
    try:
        with page.expect_console_message(
            lambda m: "not allowed to embed" in m.text
        ) as said:
            page.goto(url)
        assert said.value.type == "warning"
        assert host_site.origin in said.value.text
        expect(page.get_by_test_id("consult-launcher")).to_have_count(0)
        page.evaluate("Consult.open()")
        expect(page.get_by_test_id("consult-frame")).to_have_count(0)

        # The browser refuses the forced frames: the call page never loads in them.
        for forced in ("#forced", "#bare"):
            inner = page.locator(forced).element_handle().content_frame()
            expect(
                page.frame_locator(forced).get_by_test_id("call-state")
            ).to_have_count(0)
            assert not inner.url.startswith(app), inner.url
        ours = [text for kind, text in messages if "Consult:" in text]
        assert len(ours) == 1
        others = [text for kind, text in messages if kind == "error"]
        assert all("frame-ancestors" in text for text in others), others
    finally:
        context.close()


def test_screenshots_of_the_widget_on_the_demo_shop(
    new_page,
    visitor,
    host_site,
    app,
    allow,
    shots,
    django_db_blocker,
):
    with django_db_blocker.unblock():
        ada = off_the_loop(demo_consultant)
    allow(host_site.origin, ada)
    url = host_site.serve(
        "/",
        render_to_string("embed/demo.html", {"app": app, "origin": host_site.origin}),
        {
            "Content-Security-Policy": demo_host_policy(app),
            "Permissions-Policy": demo_host_permissions(app),
        },
    )
    desk = open_desk(new_page(viewport=LAPTOP), ada.slug)
    shop = visitor(viewport=LAPTOP)
    shop.goto(url)
    expect(shop.get_by_test_id("consult-launcher")).to_have_text("Talk to an adviser")
    frame, inner = open_widget(shop)
    # No consultant named in the snippet: the visitor picks one.
    frame.get_by_test_id("consultant-card").filter(has_text="Ada Lovelace").click()
    ready(frame)
    join(frame, "Marie Curie", reason="Which frame size for 1.65 m?")
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(frame, "in-call")
    expect_media_flowing(inner, "video")
    send_chat(desk, "Hello Marie! A 52 cm frame should suit you.")
    expect(frame.get_by_test_id("chat-log")).to_contain_text("52 cm")
    expect(shop.locator("[data-demo-events]")).to_contain_text("consult:in-call")
    picture(shop, shots / "embed-widget.png")


def demo_consultant() -> Consultant:
    found = Consultant.objects.filter(slug="ada-embed").first()
    if found is None:
        found = make_consultant(
            "ada-embed",
            name="Ada Lovelace",
            title="Bicycle fitting",
            presence="offline",
        )
    return found
