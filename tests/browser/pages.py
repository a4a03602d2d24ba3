"""What the browser tests do on the pages, through the contract's data-testid hooks."""

import time

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD

# The stats of the newest live connection of the page, by media kind.
INBOUND_STATS = """
async () => {
  const live = (window.__peers || []).filter((pc) => pc.connectionState !== "closed");
  const pc = live[live.length - 1];
  if (!pc) return null;
  const found = {audio: null, video: null};
  for (const report of (await pc.getStats()).values()) {
    if (report.type === "inbound-rtp") {
      found[report.kind] = {
        packets: report.packetsReceived || 0,
        frames: report.framesDecoded || 0,
        samples: report.totalSamplesReceived || 0,
      };
    }
  }
  return found;
}
"""


def expect_state(page: Page, state: str, timeout: float = 15_000) -> None:
    expect(page.get_by_test_id("call-state")).to_have_attribute(
        "data-state", state, timeout=timeout
    )


def open_desk(page: Page, username: str) -> Page:
    """Log in and open the desk, ready (its socket said hello)."""
    page.goto("/desk/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/desk/")
    expect(page.get_by_test_id("desk-status")).to_be_enabled()
    return page


def open_call_page(page: Page, slug: str) -> Page:
    page.goto(f"/call/{slug}/")
    expect_state(page, "idle")
    return page


def join(page: Page, name: str, *, reason: str = "", audio_only: bool = False):
    page.get_by_test_id("caller-name").fill(name)
    page.get_by_test_id("caller-reason").fill(reason)
    page.get_by_test_id("caller-audio-only").set_checked(audio_only)
    page.get_by_test_id("caller-join").click()
    try:
        expect_state(page, "queued")
    except AssertionError as error:
        why = page.locator("[data-join-error]").text_content()
        raise AssertionError(f"not queued; the page says {why!r}") from error


def queue_items(desk: Page):
    return desk.get_by_test_id("desk-queue").get_by_test_id("queue-item")


def inbound(page: Page) -> dict | None:
    return page.evaluate(INBOUND_STATS)


def expect_media_flowing(page: Page, kind: str = "video", timeout: float = 15) -> None:
    """Inbound `kind` keeps arriving: decoded frames (video) or samples (audio) grow."""
    field = "frames" if kind == "video" else "samples"
    first = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = inbound(page)
        value = stats and stats[kind] and stats[kind][field]
        if value:
            if first is None:
                first = value
            elif value > first:
                return
        time.sleep(0.25)
    raise AssertionError(f"inbound {kind} did not grow: {inbound(page)}")


def wait_until(page: Page, predicate: str, timeout: float = 15) -> None:
    """Poll a JS function until it returns true (wait_for_function would need eval,
    which the pages' CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {predicate}")
        time.sleep(0.1)


def send_chat(page: Page, text: str) -> None:
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-send").click()


# The candidates of the pair that carries the newest live connection's media.
SELECTED_PAIR = """
async () => {
  const live = (window.__peers || []).filter((pc) => pc.connectionState !== "closed");
  const pc = live[live.length - 1];
  if (!pc) return null;
  const stats = await pc.getStats();
  const transport = [...stats.values()].find((s) => s.type === "transport");
  const pair = transport && stats.get(transport.selectedCandidatePairId);
  if (!pair) return null;
  const side = (id) => {
    const c = stats.get(id);
    const relayProtocol = c.relayProtocol || "";
    return {type: c.candidateType, protocol: c.protocol, relayProtocol};
  };
  return {local: side(pair.localCandidateId), remote: side(pair.remoteCandidateId)};
}
"""


def selected_pair(page: Page) -> dict | None:
    """The selected candidate pair's two candidates: type, protocol, relayProtocol."""
    return page.evaluate(SELECTED_PAIR)


# The ICE username fragments (local, remote) of the newest live connection: an
# ICE restart changes both once its offer and answer are set.
ICE_UFRAGS = """
() => {
  const live = (window.__peers || []).filter((pc) => pc.connectionState !== "closed");
  const pc = live[live.length - 1];
  const ufrag = (d) => (d && (/^a=ice-ufrag:(.+)$/m.exec(d.sdp) || [])[1]) || "";
  return pc ? [ufrag(pc.localDescription), ufrag(pc.remoteDescription)] : null;
}
"""


def ice_ufrags(page: Page) -> list[str] | None:
    return page.evaluate(ICE_UFRAGS)
