"""The pre-call check and calls against a real coturn (docs/connectivity.md).

A second daphne hands out TURN credentials for a coturn started here, in the
suite's loopback-only namespace, with the TURN test's helper
(tests/turn/relay_probe.py). nftables rules (netfilter.py) then block UDP or
everything but the app's port, from the start or in the middle of a call.
"""

import subprocess
import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser import netfilter
from tests.browser.conftest import (
    CONNECT_SECONDS,
    GRACE_SECONDS,
    RESCUE_SECONDS,
    off_the_loop,
    page_maker,
    suite_env,
)
from tests.browser.pages import (
    expect_media_flowing,
    expect_state,
    ice_ufrags,
    join,
    open_call_page,
    open_desk,
    queue_items,
    selected_pair,
)
from tests.browser.test_connectivity import recovery_seconds, rescue_of
from tests.live import Server
from tests.turn.relay_probe import start_coturn, udp_port_bound

pytestmark = pytest.mark.browser

SECRET = "browser-turn-secret"
# Relayed media on ports below Linux's ephemeral range, so that the rules can
# let coturn's relay traffic through without opening the browsers' own ports.
RELAY_PORTS = (21000, 21100)
RELAY_UDP = "udp sport {0}-{1} udp dport {0}-{1} accept".format(*RELAY_PORTS)
# The check's bound (precheck.js PROBE_MS) and some slack for a busy machine.
CHECK_BOUND_SECONDS = 8


@pytest.fixture(scope="module")
def coturn(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("coturn")
    port = 34790
    plan = {"secret": SECRET, "realm": "consult.test", "port": port}
    extra = (f"--min-port={RELAY_PORTS[0]}", f"--max-port={RELAY_PORTS[1]}")
    process = start_coturn(plan, str(workdir), extra)
    # Playwright's event loop runs here: poll without one.
    deadline = time.monotonic() + 10
    while not udp_port_bound(port):
        assert process.poll() is None and time.monotonic() < deadline, "no coturn"
        time.sleep(0.05)
    yield port
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def turn_app(app, workdir, redis_url, database, coturn):
    """A daphne like `app`, whose `hello` names the coturn over UDP and TCP."""
    turn = f"turn:127.0.0.1:{coturn}"
    env = suite_env(
        workdir,
        redis_url,
        database,
        CHANNEL_PREFIX="browser-turn",
        CONSULT_GRACE_SECONDS=str(GRACE_SECONDS),
        CONSULT_CONNECT_SECONDS=str(CONNECT_SECONDS),
        CONSULT_CONNECT_RESCUE_SECONDS=str(RESCUE_SECONDS),
        CONSULT_MAX_SOCKETS_PER_ADDRESS="1000",
        CONSULT_MAX_WAITING_PER_ADDRESS="1000",
        CONSULT_JOIN_BURST_PER_ADDRESS="1000",
        CONSULT_TURN_URLS=f"{turn}?transport=udp,{turn}?transport=tcp",
        CONSULT_TURN_SECRET=SECRET,
    )
    server = Server("daphne-turn", workdir, env)
    server.start()
    yield server.origin
    server.stop()


@pytest.fixture
def turn_page(chromium, turn_app):
    with page_maker(chromium, turn_app) as make:
        yield make


def ports(origin: str, redis_url: str) -> tuple[int, int]:
    return urlsplit(origin).port, urlsplit(redis_url).port


def relayed_over_tcp(page) -> bool:
    """Whether the page's media goes through its TURN relay, reached over TCP."""
    pair = selected_pair(page)
    return (
        pair is not None
        and (pair["local"]["type"], pair["local"]["relayProtocol"]) == ("relay", "tcp")
        and pair["remote"]["type"] == "relay"
    )


def test_udp_blocked_but_turn_over_tcp_check_says_relay_and_the_call_goes_through_it(
    turn_page, turn_app, redis_url, coturn, consultant
):
    open_tcp = netfilter.tcp_ports(*ports(turn_app, redis_url), coturn)
    with netfilter.only(*open_tcp, RELAY_UDP):
        desk = open_desk(turn_page(), consultant.slug)
        caller = open_call_page(turn_page(), consultant.slug)
        check = caller.get_by_test_id("precheck")
        expect(check).to_have_attribute(
            "data-class", "relay", timeout=CHECK_BOUND_SECONDS * 1000
        )
        expect(caller.locator("[data-precheck-blocked]")).to_be_hidden()
        join(caller, "Bo Caller")
        expect(queue_items(desk)).to_have_attribute("data-connectivity", "relay")
        expect(queue_items(desk)).to_contain_text("relay only")

        desk.get_by_test_id("desk-accept-next").click()
        expect_state(desk, "in-call")
        expect_state(caller, "in-call")
        expect_media_flowing(desk, "video")
        expect_media_flowing(caller, "video")
        assert relayed_over_tcp(caller), selected_pair(caller)
        assert relayed_over_tcp(desk), selected_pair(desk)


def test_everything_blocked_but_the_app_check_says_blocked_and_caller_is_told(
    turn_page, turn_app, redis_url, consultant
):
    with netfilter.only(*netfilter.tcp_ports(*ports(turn_app, redis_url))):
        caller = turn_page()
        started = time.monotonic()
        open_call_page(caller, consultant.slug)
        expect(caller.get_by_test_id("precheck")).to_have_attribute(
            "data-class", "blocked", timeout=CHECK_BOUND_SECONDS * 1000
        )
        assert time.monotonic() - started < CHECK_BOUND_SECONDS
        notice = caller.locator("[data-precheck-blocked]")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("audio only")
        # The join is not held up by the check, and the choices work.
        expect(caller.get_by_test_id("caller-join")).to_be_enabled()
        notice.get_by_role("button", name="Use audio only").click()
        expect(caller.get_by_test_id("caller-audio-only")).to_be_checked()


def relay_rung_taken(page, timeout: float) -> float:
    """The monotonic time at which `page` stood on the relay rung (or had
    already recovered on it); fails past `timeout`."""
    step = page.get_by_test_id("watchdog-step")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "relay" in (
            step.get_attribute("data-step"),
            step.get_attribute("data-recovered"),
        ):
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"no relay rung: {step.get_attribute('data-step')!r}")


def test_mid_call_drop_with_only_turn_left_recovers_through_the_relay_rung(
    turn_page, turn_app, redis_url, coturn, consultant, django_db_blocker
):
    desk = open_desk(turn_page(), consultant.slug)
    caller = open_call_page(turn_page(), consultant.slug)
    expect(caller.get_by_test_id("precheck")).to_have_attribute(
        "data-class", "direct", timeout=CHECK_BOUND_SECONDS * 1000
    )
    join(caller, "Bo Caller")
    desk.get_by_test_id("desk-accept-next").click()
    expect_state(caller, "in-call")
    expect_media_flowing(desk, "video")
    assert selected_pair(caller)["local"]["type"] == "host"
    app_tcp = netfilter.tcp_ports(*ports(turn_app, redis_url))
    first = ice_ufrags(caller)

    # Nothing but the sockets to the app: the first rung's ICE restart finds no
    # path. coturn refuses at once rather than in silence, so that its TURN
    # connections break now and none of that restart's reaches coturn later.
    with netfilter.only(*app_tcp, *netfilter.tcp_refused(coturn)):
        dropped = time.monotonic()
        for page in (caller, desk):
            expect(page.get_by_test_id("watchdog-step")).to_have_attribute(
                "data-step", "ice-restart", timeout=10_000
            )
        # The restart's offer and answer are set (so both pages gather for it),
        # and its TURN connections have met the refusal; the next rung comes
        # 4 s after this one (watchdog.js STEP_MS).
        deadline = time.monotonic() + 3
        while any(
            new == old for new, old in zip(ice_ufrags(caller), first, strict=True)
        ):
            assert time.monotonic() < deadline, "the ICE restart was not negotiated"
            time.sleep(0.05)
        time.sleep(0.5)
        # Then only TURN over TCP comes back: the relay rung's restart finds it.
        netfilter.switch(*app_tcp, *netfilter.tcp_ports(coturn), RELAY_UDP)
        relay_rung = relay_rung_taken(caller, timeout=8)
        seconds = recovery_seconds([caller, desk], relay_rung, timeout=20)
        # docs/benchmarks.md keeps these times (run with -s).
        print(
            f"\nmedia back after the relay rung: caller {seconds[0]:.2f} s, "
            f"desk {seconds[1]:.2f} s ({relay_rung - dropped:.2f} s from the "
            "drop to the rung)"
        )
        expect_media_flowing(desk, "video")
        expect_media_flowing(caller, "video")
        assert relayed_over_tcp(caller), selected_pair(caller)
        assert relayed_over_tcp(desk), selected_pair(desk)
    with django_db_blocker.unblock():
        assert off_the_loop(rescue_of, consultant) == ("relay", "relay")
