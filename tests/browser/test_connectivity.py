"""Calls that connect on any network (docs/connectivity.md): the pre-call check,
each side's view of the other, the connecting deadline and the watchdog.

Network failures are made with nftables rules in the suite's own loopback-only
namespace (netfilter.py); every rule is lifted when its test ends.
"""

import re
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from consult.models import Consultation
from tests.browser import netfilter
from tests.browser.conftest import CONNECT_SECONDS, RESCUE_SECONDS, off_the_loop
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    join,
    open_call_page,
    open_desk,
    queue_items,
)

pytestmark = pytest.mark.browser


def shown_within(locator, seconds: float) -> float:
    """Seconds until `locator` is visible; fails past `seconds`."""
    start = time.monotonic()
    expect(locator).to_be_visible(timeout=seconds * 1000)
    return time.monotonic() - start


def call_with_check(new_page, consultant):
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    expect(caller.get_by_test_id("precheck")).to_have_attribute("data-class", "direct")
    join(caller, "Bo Caller")
    expect(queue_items(desk)).to_have_attribute("data-connectivity", "direct")
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(desk, "in-call")
    expect_state(caller, "in-call")
    return desk, caller


def test_mute_and_camera_off_show_on_the_other_page_within_a_second(
    new_page, consultant
):
    desk, caller = call_with_check(new_page, consultant)
    expect_media_flowing(desk, "video")
    expect(desk.get_by_test_id("peer-muted")).to_be_hidden()
    expect(desk.get_by_test_id("call-quality")).to_have_attribute("data-level", "good")

    caller.get_by_role("button", name="Mute").click()
    assert shown_within(desk.get_by_test_id("peer-muted"), 1) < 1
    caller.get_by_role("button", name="Camera off").click()
    assert shown_within(desk.get_by_test_id("peer-camera-off"), 1) < 1
    desk.get_by_role("button", name="Mute").click()
    assert shown_within(caller.get_by_test_id("peer-muted"), 1) < 1

    caller.get_by_role("button", name="Unmute").click()
    expect(desk.get_by_test_id("peer-muted")).to_be_hidden(timeout=1000)
    expect(desk.get_by_test_id("peer-camera-off")).to_be_visible()
    expect(desk.get_by_test_id("watchdog-step")).to_be_hidden()


def consultation_outcomes(consultant) -> list[str]:
    return list(
        Consultation.objects.filter(consultant=consultant)
        .order_by("id")
        .values_list("outcome", flat=True)
    )


def test_no_media_after_the_answer_fails_the_call_and_the_caller_heads_the_queue(
    new_page, consultant, app, redis_url, django_db_blocker
):
    desk = open_desk(new_page(), consultant.slug)
    caller = open_call_page(new_page(), consultant.slug)
    join(caller, "Bo Caller")
    later = open_call_page(new_page(), consultant.slug)
    join(later, "Cy Later")
    expect(queue_items(desk)).to_have_count(2)
    app_port = urlsplit(app).port
    redis_port = urlsplit(redis_url).port

    # Only the sockets to the app (and the app's to Redis) get through: no
    # ICE check ever reaches the other browser.
    with netfilter.only(*netfilter.tcp_ports(app_port, redis_port)):
        desk.get_by_test_id("desk-accept-next").click()
        expect_state(caller, "connecting")
        # Past the bound both pages say so and climb the ladder.
        for page in (caller, desk):
            step = page.get_by_test_id("watchdog-step")
            expect(step).to_have_attribute(
                "data-step", "ice-restart", timeout=(CONNECT_SECONDS + 3) * 1000
            )
        for page in (caller, desk):
            expect(page.get_by_test_id("watchdog-step")).to_have_attribute(
                "data-step", "audio-only", timeout=10_000
            )
        # The deadline ends the call as failed to connect...
        expect_state(desk, "failed", timeout=(RESCUE_SECONDS + 6) * 1000)
        # ... and the caller is first in line again, ahead of the later caller.
        expect_state(caller, "queued")
        expect(caller.get_by_test_id("queue-position")).to_have_text("1")
        expect(caller.locator("[data-connect-failed]")).to_be_visible()
        expect(queue_items(desk)).to_have_count(2)
        expect(queue_items(desk).first).to_contain_text("Bo Caller")
        expect(later.get_by_test_id("queue-position")).to_have_text("2")

    with django_db_blocker.unblock():
        outcomes = off_the_loop(consultation_outcomes, consultant)
    assert outcomes == ["failed"]

    # The retry connects once the network lets it.
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(caller, "in-call")
    expect_media_flowing(desk, "audio")


def recovery_seconds(pages, since: float, timeout: float) -> list[float]:
    """Seconds from `since` until each page's watchdog says media flows again."""
    found: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(pages) and time.monotonic() < deadline:
        for index, page in enumerate(pages):
            step = page.get_by_test_id("watchdog-step")
            if index not in found and step.get_attribute("data-recovered"):
                found[index] = time.monotonic() - since
        time.sleep(0.05)
    assert len(found) == len(pages), f"recovered: {found}"
    return [found[index] for index in range(len(pages))]


def rescue_of(consultant) -> tuple[str, str]:
    call = Consultation.objects.get(consultant=consultant, outcome="active")
    return call.watchdog_step, call.rescued_by


def test_mid_call_drop_of_the_media_path_shows_the_ladder_and_recovers(
    new_page, consultant, app, redis_url, django_db_blocker
):
    desk, caller = call_with_check(new_page, consultant)
    expect_media_flowing(caller, "video")
    expect_media_flowing(desk, "video")
    app_port, redis_port = urlsplit(app).port, urlsplit(redis_url).port

    # Every UDP packet is dropped; the sockets to the app stay up.
    with netfilter.only(*netfilter.tcp_ports(app_port, redis_port)):
        for page in (caller, desk):
            expect(page.get_by_test_id("watchdog-step")).to_have_attribute(
                "data-step", "ice-restart", timeout=10_000
            )
            expect(page.get_by_test_id("watchdog-step")).to_contain_text("Reconnecting")
        # The socket kept the call: in it, or showing it reconnects (the
        # browser may have marked the connection disconnected by now).
        expect(caller.get_by_test_id("call-state")).to_have_attribute(
            "data-state", re.compile(r"^(in-call|reconnecting)$")
        )
    lifted = time.monotonic()

    seconds = recovery_seconds([caller, desk], lifted, timeout=30)
    # docs/benchmarks.md keeps these times (run with -s).
    print(f"\nmedia back after: caller {seconds[0]:.2f} s, desk {seconds[1]:.2f} s")
    expect_media_flowing(desk, "audio")
    with django_db_blocker.unblock():
        furthest, rescued_by = off_the_loop(rescue_of, consultant)
    print(f"furthest rung {furthest}, rescued by {rescued_by}")
    # The path came back while the ladder stood on its first rung.
    assert (furthest, rescued_by) == ("ice-restart", "ice-restart")
