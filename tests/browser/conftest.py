"""A real app (daphne), its private Redis and a headless Chromium, on loopback only.

These tests must run inside a network namespace whose only interface is `lo`
(scripts/test-browser.sh makes one), so that no WebRTC packet leaves the
machine. The app's database is the SQLite file the settings name; this
process writes its rows (consultants) straight into it.
"""

import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.factories import make_consultant
from tests.live import ROOT, Redis, Server, server_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Without it Chromium gathers no ICE candidate when `lo` is the only interface.
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Records every RTCPeerConnection and WebSocket a page makes, so that a test
# can read a connection's stats or cut a socket as a network drop would.
TRACK_PEERS = """
(() => {
  const track = (name, list) => {
    const Native = window[name];
    window[list] = [];
    window[name] = class extends Native {
      constructor(...args) { super(...args); window[list].push(this); }
    };
  };
  track("RTCPeerConnection", "__peers");
  track("WebSocket", "__sockets");
})();
"""
GRACE_SECONDS = 6
CONNECT_SECONDS = 5
RESCUE_SECONDS = 8
OFFLINE = "net::ERR_INTERNET_DISCONNECTED"

expect.set_options(timeout=15_000)


def loopback_only() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


@pytest.fixture(scope="session", autouse=True)
def _loopback_only():
    # Fail rather than skip: a skipped browser suite would pass for coverage.
    if not loopback_only():
        pytest.fail(
            "browser tests run only in a loopback-only network namespace: "
            "use scripts/test-browser.sh (or deselect them: -m 'not browser')",
            pytrace=False,
        )


def off_the_loop(function, *args, **kwargs):
    """Run ORM code in a thread: Playwright's sync API runs an event loop here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="session")
def redis_url(workdir):
    redis = Redis(workdir)
    redis.start()
    yield redis.url
    redis.stop()


@pytest.fixture(scope="session")
def database(django_db_blocker):
    """The app's SQLite file, fresh and migrated."""
    from django.conf import settings
    from django.core.management import call_command

    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("sqlite3") or "SQLITE_PATH" not in os.environ:
        pytest.fail("set SQLITE_PATH to a scratch file: this suite empties it")
    path = Path(db["NAME"])
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    with django_db_blocker.unblock():
        off_the_loop(call_command, "migrate", verbosity=0)
    return path


def suite_env(workdir: Path, redis_url: str, database: Path, **settings: str) -> dict:
    """The environment of a daphne on the suite's database, Redis and collected
    static files, as in production (DEBUG off), with `settings` on top: `app`,
    and the second servers that some tests start with settings of their own."""
    return server_env(
        sqlite_path=database,
        redis_url=redis_url,
        secret_key="browser-test-secret-key",
        DJANGO_HSTS_SECONDS="0",
        DJANGO_STATIC_ROOT=str(workdir / "static"),
        **settings,
    )


@pytest.fixture(scope="session")
def app(workdir, redis_url, database):
    """The base URL of a daphne serving the app as in production (DEBUG off)."""
    env = suite_env(
        workdir,
        redis_url,
        database,
        CONSULT_RECORDING_DIR=str(workdir / "recordings"),
        CHANNEL_PREFIX="browser",
        # Short enough for a test to outwait, long enough for any reload.
        CONSULT_GRACE_SECONDS=str(GRACE_SECONDS),
        # A call without media fails this soon after the answer (test_connectivity).
        CONSULT_CONNECT_SECONDS=str(CONNECT_SECONDS),
        CONSULT_CONNECT_RESCUE_SECONDS=str(RESCUE_SECONDS),
        # Every page of every test comes from 127.0.0.1: lift the per-address caps.
        CONSULT_MAX_SOCKETS_PER_ADDRESS="1000",
        CONSULT_MAX_WAITING_PER_ADDRESS="1000",
        CONSULT_JOIN_BURST_PER_ADDRESS="1000",
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    server = Server("daphne", workdir, env)
    server.start()
    urllib.request.urlopen(server.origin + "/", timeout=10).close()  # noqa: S310
    yield server.origin
    server.stop()
    errors = [line for line in server.log_text().splitlines() if "Traceback" in line]
    assert not errors, f"the app logged errors:\n{server.log_tail(5000)}"


@pytest.fixture(scope="session")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def console_error(message, errors: list) -> None:
    # Chromium logs each socket it fails to open; tests that cut the network
    # cause these on purpose.
    if message.type == "error" and OFFLINE not in message.text:
        errors.append(message.text)


@contextlib.contextmanager
def page_maker(browser, base_url: str):
    """`make(**options)`: a page of `browser` on `base_url`, in a context of its
    own (separate cookies and sessionStorage). On leaving, the contexts close,
    and a script error or a console error (a CSP violation, say) fails the test.
    """
    contexts, errors = [], []

    def make(**options):
        context = browser.new_context(base_url=base_url, **options)
        context.add_init_script(TRACK_PEERS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: console_error(message, errors))
        return page

    yield make
    for context in contexts:
        context.close()
    assert errors == []


@pytest.fixture
def new_page(chromium, app):
    """Pages on the app (`page_maker`)."""
    with page_maker(chromium, app) as make:
        yield make


_slugs = count(1)


@pytest.fixture
def consultant(django_db_blocker, database):
    """A consultant of this test alone (offline until its desk opens)."""
    with django_db_blocker.unblock():
        return off_the_loop(
            make_consultant, f"consultant{next(_slugs)}", presence="offline"
        )
