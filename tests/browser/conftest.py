"""A real app (daphne), its private Redis and a headless Chromium, on loopback only.

These tests must run inside a network namespace whose only interface is `lo`
(scripts/test-browser.sh makes one), so that no WebRTC packet leaves the
machine. The app's database is the SQLite file the settings name; this
process writes its rows (consultants) straight into it.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.factories import make_consultant

ROOT = Path(__file__).resolve().parents[2]
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
STARTUP_SECONDS = 20
GRACE_SECONDS = 6
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.args[0]} did not start:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("browser")


@pytest.fixture(scope="session")
def redis_url(workdir):
    port = free_port()
    log = workdir / "redis.log"
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            *("--bind", "127.0.0.1", "--port", str(port)),
            *("--save", "", "--appendonly", "no", "--dir", str(workdir)),
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process, log)
    yield f"redis://127.0.0.1:{port}/0"
    stop(process)


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


@pytest.fixture(scope="session")
def app(workdir, redis_url, database):
    """The base URL of a daphne serving the app as in production (DEBUG off)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "browser-test-secret-key",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_STATIC_ROOT": str(workdir / "static"),
        "SQLITE_PATH": str(database),
        "REDIS_URL": redis_url,
        "CHANNEL_PREFIX": "browser",
        # Short enough for a test to outwait, long enough for any reload.
        "CONSULT_GRACE_SECONDS": str(GRACE_SECONDS),
        # Every page of every test comes from 127.0.0.1: lift the per-address caps.
        "CONSULT_MAX_SOCKETS_PER_ADDRESS": "1000",
        "CONSULT_MAX_WAITING_PER_ADDRESS": "1000",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    port = free_port()
    log = workdir / "daphne.log"
    daphne = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        [python, *daphne, "config.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process, log)
    base = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(base + "/", timeout=10).close()  # noqa: S310
    yield base
    stop(process)
    errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
    assert not errors, f"the app logged errors:\n{log.read_text()[-5000:]}"


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


@pytest.fixture
def new_page(chromium, app):
    """Pages in contexts of their own (separate cookies and sessionStorage).

    A script error or a console error (a CSP violation, say) fails the test.
    """
    contexts, errors = [], []

    def make(**options):
        context = chromium.new_context(base_url=app, **options)
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


_slugs = count(1)


@pytest.fixture
def consultant(django_db_blocker, database):
    """A consultant of this test alone (offline until its desk opens)."""
    with django_db_blocker.unblock():
        return off_the_loop(
            make_consultant, f"consultant{next(_slugs)}", presence="offline"
        )
