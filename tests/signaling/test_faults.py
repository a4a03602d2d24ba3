"""A queue that heals itself: faults under live sockets, with real parts only.

Real `daphne` processes, Redis and PostgreSQL (and SQLite named by URL where a
single process is enough). A failover that cuts every database connection, a
Redis restart, a server process killed or restarted, an operator's action, a
logout or a deactivation handled by another process: after each, no page saw a
socket closed with 1011 (a page that sees 4013, try again, comes back as a
browser would),
both parties hear what happened, and the database converges within grace +
process timeout to a state where nothing is held by a party that is gone
(`Site.converged`, the one check of every case).
"""

import asyncio
import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
)
from django.utils import timezone
from websockets.exceptions import ConnectionClosed

from consult.models import (
    Consultant,
    Consultation,
    DeskSocket,
    Presence,
    ServerProcess,
    Ticket,
)
from tests.factories import ANSWER, OFFER, PASSWORD, make_consultant
from tests.live import HOST, ROOT, Redis, Server, server_env, started_redis
from tests.signaling.live import (
    CANDIDATE,
    END_OF_CANDIDATES,
    PUSHES,
    TIMEOUT,
    Peer,
    database_url,
    postgres_admin,
    running_servers,
)

# PostgreSQL sites take the test database (`transactional_db`); SQLite sites
# use a file of their own, which the test reads through a database alias.
pytestmark = pytest.mark.processes


@dataclass(frozen=True)
class Timings:
    """The liveness settings of a site's servers, in seconds."""

    grace: float
    heartbeat: float
    process_timeout: float

    @property
    def env(self) -> dict[str, str]:
        return {
            "CONSULT_GRACE_SECONDS": str(self.grace),
            "CONSULT_HEARTBEAT_SECONDS": str(self.heartbeat),
            "CONSULT_PROCESS_TIMEOUT_SECONDS": str(self.process_timeout),
        }

    @property
    def heals_within(self) -> float:
        # A death is noticed within the process timeout and a beat, a grace
        # runs out within a beat of its end; the rest is slack for a loaded
        # machine.
        return self.process_timeout + self.grace + 2 * self.heartbeat + 3


# What `running_servers` gives its servers (each site checks that it still is).
SHORT = Timings(grace=3, heartbeat=0.5, process_timeout=2)
GRACE, HEARTBEAT, PROCESS_TIMEOUT = SHORT.grace, SHORT.heartbeat, SHORT.process_timeout
# What a cleanly stopped process held ends one process timeout after the stop
# (docs/protocol.md, 8): a restart of the only process must be up by then.
# Two seconds is less than a daphne start takes on a loaded two-core machine.
RESTARTABLE = Timings(grace=6, heartbeat=0.5, process_timeout=5)
# With no fault since the last convergence, what a service wrote is there as
# soon as a party hears of it; this is slack for a sweep.
SETTLES_WITHIN = 2 * HEARTBEAT + 1
COALESCE = 1  # the push merge window (settings default)
AT_ONCE = 1.0
SERVER_ERROR = 1011
# "Try again" (docs/protocol.md, close codes): daphne cannot send 1013.
TRY_AGAIN = 4013
# What a page sees when its server goes away (restart or crash): it comes back.
GONE = {1001, 1006}
NOT_LOGGED_IN, NOT_CONSULTANT = 4401, 4403
OFFLINE_REASON = "The consultant went offline."
PRIVATE_REDIS_PORTS = range(6390, 6400)
SQLITE = "faults_sqlite"
MAKE_ADA = (
    "from tests.factories import make_consultant\n"
    "make_consultant('ada', presence='offline')"
)
MIGRATE = "from django.core.management import call_command\ncall_command('migrate')"


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


# --- pages: what a browser does over the sockets and over HTTP ------------------------


class Page:
    """A browser page's socket to one of the servers. Every socket it opens is
    added to `sockets`, so that the test can read how each one was closed."""

    path = ""

    def __init__(self, sockets: list, cookie: str | None = None):
        self.sockets = sockets
        self.cookie = cookie
        self.peer: Peer | None = None
        self.server: Server | None = None

    async def connect(self, server: Server) -> dict:
        """Open a socket to `server`; its `hello`."""
        self.server = server
        self.peer = await Peer.open(server, self.path, self.cookie)
        self.sockets.append(self.peer.ws)
        return await self.frame("hello", skip=())

    async def send(self, type_: str, **fields) -> None:
        await self.peer.send(type_, **fields)

    async def frame(
        self,
        type_: str,
        *,
        until: Callable[[dict], bool] | None = None,
        wait: float = TIMEOUT,
        skip: set[str] = PUSHES,
    ) -> dict:
        """The next frame of `type_` for which `until(frame)` holds; only frames
        of the `skip` types may come before it."""
        deadline = time.monotonic() + wait
        while True:
            got = await self.peer.receive(max(deadline - time.monotonic(), 0.01))
            if got["type"] == type_ and (until is None or until(got)):
                return got
            assert got["type"] in skip, f"waiting for {type_}, got {got}"

    async def reply(self, wait: float = TIMEOUT) -> dict:
        """The next frame that is not a push."""
        deadline = time.monotonic() + wait
        while True:
            got = await self.peer.receive(max(deadline - time.monotonic(), 0.01))
            if got["type"] not in PUSHES:
                return got

    async def closed(self, wait: float = TIMEOUT) -> int:
        """Wait until the server closes this socket (pushes may come first);
        the close code."""
        deadline = time.monotonic() + wait
        try:
            while True:
                got = await self.peer.receive(max(deadline - time.monotonic(), 0.01))
                assert got["type"] in PUSHES, f"waiting for the close, got {got}"
        except ConnectionClosed:
            return self.peer.ws.close_code

    async def ask(self, type_: str, answer: str, **fields) -> dict:
        """Send a frame, wait for its answer. A socket closed with 4013 (try
        again) did not do it: the page comes back, as a browser would, and
        sends it again."""
        skip = PUSHES
        for attempt in range(2):
            try:
                await self.send(type_, **fields)
                return await self.frame(answer, skip=skip)
            except ConnectionClosed:
                if attempt or self.peer.ws.close_code != TRY_AGAIN:
                    raise
                await self.come_back()
                # What the comeback brings may come first.
                skip = PUSHES | {"resumed", "peer"}
        raise AssertionError("unreachable")

    async def come_back(self, server: Server | None = None) -> dict:
        """Reconnect (to `server`, else the same one) as the page does after a
        drop; a socket closed with 4013 (try again) is retried, a few times."""
        for attempt in range(3):
            try:
                return await self.reconnect(server or self.server)
            except ConnectionClosed:
                if attempt == 2 or self.peer.ws.close_code != TRY_AGAIN:
                    raise
                await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    async def ride_out(self, seconds: float) -> list[dict]:
        """Stay for `seconds` as an idle page does: pushes come, and a close
        with 4013 (try again) is followed by a comeback. Every push seen and
        what each comeback brought (`queued`, `resumed`, a desk's `queue`)."""
        deadline = time.monotonic() + seconds
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = await self.peer.receive(left)
                assert got["type"] in PUSHES | {"peer"}, f"while idle, got {got}"
            except TimeoutError:
                break
            except ConnectionClosed:
                if self.peer.ws.close_code != TRY_AGAIN:
                    raise
                got = await self.come_back()
            seen.append(got)
        return seen

    async def reconnect(self, server: Server) -> dict:
        raise NotImplementedError

    async def leave(self) -> None:
        """Close the socket as a closed tab does: no `cancel`, no `hangup`."""
        await self.peer.close()


class Caller(Page):
    path = "/ws/call/"
    token = ""
    ticket = ""

    async def join(self, server: Server, name: str = "Bo") -> dict:
        """Connect to `server` and queue for Ada with an offer; the `queued` frame."""
        hello = await self.connect(server)
        assert [c["slug"] for c in hello["consultants"]] == ["ada"]
        offer = {"type": "offer", "sdp": OFFER}
        queued = await self.ask(
            "join", "queued", consultant="ada", name=name, offer=offer
        )
        self.token, self.ticket = queued["token"], queued["ticket"]
        return queued

    async def reconnect(self, server: Server) -> dict:
        """A new socket that resumes the ticket: `queued` or `resumed`."""
        await self.connect(server)
        if not self.token:  # it never got a ticket: nothing to resume
            return {}
        await self.send("resume", token=self.token)
        return await self.reply()


class Desk(Page):
    path = "/ws/desk/"

    def __init__(self, sockets: list, browser: "Browser", cookie: str = ""):
        super().__init__(sockets, cookie or browser.session)
        self.browser = browser

    async def open(self, server: Server) -> dict:
        """Open the desk on `server`: `hello`, then its opening `queue` frame."""
        hello = await self.connect(server)
        assert hello["consultant"]["slug"] == "ada"
        return await self.frame("queue", skip=())

    async def reconnect(self, server: Server) -> dict:
        return await self.open(server)

    async def refused_at(self, server: Server) -> int:
        """Open a desk that the server must close before any frame; the code."""
        self.server = server
        self.peer = await Peer.open(server, self.path, self.cookie)
        self.sockets.append(self.peer.ws)
        try:
            got = await self.peer.receive()
        except ConnectionClosed:
            return self.peer.ws.close_code
        raise AssertionError(f"a frame before the close: {got}")


class Browser:
    """One browser's cookies, for forms posted to any of the servers over HTTP."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    @property
    def session(self) -> str:
        return f"sessionid={self.cookies['sessionid']}"

    def log_in(self, server: Server, username: str, password: str = PASSWORD):
        fields = [("username", username), ("password", password)]
        status, page = self.post(server, "/accounts/login/", fields)
        assert status == 302, f"login of {username}: {status} {page[:500]}"

    def get(self, server: Server, path: str) -> tuple[int, str]:
        return self._request(server, "GET", path)

    def post(self, server: Server, path: str, fields: list) -> tuple[int, str]:
        """POST a form with its CSRF token; (status, body)."""
        if "csrftoken" not in self.cookies:
            self.get(server, "/accounts/login/")
        # Django takes the cookie's secret itself as the form's token.
        token = self.cookies["csrftoken"]
        body = urlencode([*fields, ("csrfmiddlewaretoken", token)])
        return self._request(server, "POST", path, body)

    def _request(self, server: Server, method: str, path: str, body=None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, value = header.split(";", 1)[0].split("=", 1)
            if value in ("", '""'):  # deleted, as the session at logout
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response.status, text


# --- the database, as the test reads it -----------------------------------------------


def queue_state(using: str, processes: int, timings: Timings) -> tuple[dict, list]:
    """What the database holds live, and what of it is held by a party that is
    gone: every waiting ticket must have a caller socket, every active call both
    parties' sockets, every consultant who is not offline a desk socket, all on
    the `processes` server processes that run and beat (a dead one is swept)."""
    since = timezone.now() - timedelta(seconds=timings.process_timeout)
    # A swept process's row stays a while as a tombstone (swept_at set).
    rows = ServerProcess.objects.using(using).filter(swept_at__isnull=True)
    beating = set(rows.filter(heartbeat_at__gte=since).values_list("pk", flat=True))
    problems = []
    if rows.count() != processes or len(beating) != processes:
        problems.append(
            f"{rows.count()} server processes not swept, {len(beating)} beating,"
            f" for {processes} running servers"
        )

    def held(channel: str, process: str) -> bool:
        return bool(channel) and process in beating

    tickets = Ticket.objects.using(using)
    waiting = tickets.filter(state=Ticket.State.WAITING)
    for ticket in waiting:
        if not held(ticket.caller_channel, ticket.caller_process):
            problems.append(f"waiting ticket of {ticket.caller_name}: no live socket")
    calls = Consultation.objects.using(using).filter(
        outcome=Consultation.Outcome.ACTIVE
    )
    for call in calls.select_related("ticket"):
        ticket = call.ticket
        if ticket is None or ticket.state != Ticket.State.IN_CALL:
            problems.append(f"active call {call.pk}: its ticket is not in the call")
        elif not held(ticket.caller_channel, ticket.caller_process):
            problems.append(f"active call {call.pk}: the caller has no live socket")
        if not held(call.consultant_channel, call.consultant_process):
            problems.append(f"active call {call.pk}: the desk has no live socket")
    orphans = tickets.filter(state=Ticket.State.IN_CALL).exclude(
        consultation__outcome=Consultation.Outcome.ACTIVE
    )
    problems += [f"ticket of {t.caller_name} in a call that is over" for t in orphans]
    desks = DeskSocket.objects.using(using)
    for desk in desks.exclude(process__in=beating):
        problems.append(f"desk socket {desk.channel_name} on a dead process")
    present = Consultant.objects.using(using).exclude(presence=Presence.OFFLINE)
    for consultant in present:
        if not desks.filter(consultant=consultant, process__in=beating).exists():
            problems.append(f"{consultant.slug} is {consultant.presence}, no desk")
    live = {
        "waiting": waiting.count(),
        "calls": calls.count(),
        "desks": desks.count(),
        "present": present.count(),
    }
    return live, problems


def make_ada(using: str) -> None:
    """Ada, offline until her desk opens (PostgreSQL sites: the default alias)."""
    make_consultant("ada", presence=Presence.OFFLINE)


def make_superuser(using: str, username: str) -> None:
    """An operator (PostgreSQL sites: the default alias)."""
    get_user_model().objects.create_superuser(username, password=PASSWORD)


def consultation_of(using: str, pk: int) -> tuple[str, str, str]:
    call = Consultation.objects.using(using).get(pk=pk)
    return call.outcome, call.ended_by, call.end_reason


def django_script(env: dict[str, str], code: str) -> None:
    """Run `code` with Django set up in `env`: a server's settings and database."""
    subprocess.run(
        [sys.executable, "-c", f"import django\ndjango.setup()\n{code}"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def terminate_backends() -> int:
    """As a failover does: end every other server connection to the test's
    database; how many there were. Right after another cut the servers may
    hold none yet: wait a few beats for some."""
    for _ in range(50):
        ended = postgres_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            connection.settings_dict["NAME"],
        )
        if count := sum(1 for (ok,) in ended if ok):
            return count
        time.sleep(HEARTBEAT / 5)
    return 0


def allow_connections(allow: bool) -> None:
    """Let the test's database take new connections, or refuse them all."""
    name = connection.settings_dict["NAME"]
    postgres_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allow}')


def close_quietly(using: str = DEFAULT_DB_ALIAS) -> None:
    """Close this thread's connection, which a failover may have cut."""
    with contextlib.suppress(DatabaseError):
        connections[using].close()


def _on_database(using: str, func: Callable, args: tuple):
    try:
        try:
            return func(using, *args)
        except (OperationalError, InterfaceError):
            # A connection that a failover cut: once more on a fresh one.
            close_quietly(using)
        return func(using, *args)
    finally:
        close_quietly(using)


@contextmanager
def sqlite_alias(path: Path) -> Iterator[str]:
    """The SQLite file of a server process, as a database alias of this test."""
    configured = connections.configure_settings(
        {
            DEFAULT_DB_ALIAS: dict(connections.settings[DEFAULT_DB_ALIAS]),
            SQLITE: {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(path),
                "OPTIONS": {"timeout": 20},
            },
        }
    )
    connections.settings[SQLITE] = configured[SQLITE]
    try:
        yield SQLITE
    finally:
        # Gone before pytest-django's teardown looks at every alias.
        del connections.settings[SQLITE]


# --- a site: the servers, their database and the pages of one test --------------------


class Site:
    """Server processes on one database and one Redis, and the pages that the
    test opens on them."""

    def __init__(self, servers: list[Server], using: str, timings: Timings, log_dir):
        self.servers = servers
        self.using = using
        self.timings = timings
        self.log_dir = log_dir
        self.sockets: list = []
        self.own: list[Server] = []
        self.fault_at: float | None = None
        self.healed = False

    async def read(self, func: Callable, *args):
        """`func(using, *args)` on a worker thread, on the servers' database."""
        run = sync_to_async(_on_database, thread_sensitive=False)
        return await run(self.using, func, args)

    async def consultant(self) -> None:
        """Ada, a consultant who is offline until her desk opens."""
        if self.using == DEFAULT_DB_ALIAS:
            await self.read(make_ada)
        else:
            # Written by a process with the servers' settings: the signals of
            # a save here would read this process's default database.
            await asyncio.to_thread(django_script, self.servers[0].env, MAKE_ADA)

    def caller(self) -> "Caller":
        return Caller(self.sockets)

    async def desk(self, server: Server, username: str = "ada") -> "Desk":
        """A desk page of `username`, logged in over HTTP and open on `server`."""
        browser = Browser()
        await asyncio.to_thread(browser.log_in, server, username)
        desk = Desk(self.sockets, browser)
        await desk.open(server)
        return desk

    async def operator(self, server: Server) -> "Browser":
        """A superuser's browser, logged in on `server`."""
        await self.read(make_superuser, "lead")
        browser = Browser()
        await asyncio.to_thread(browser.log_in, server, "lead")
        return browser

    @property
    def running(self) -> int:
        return sum(server.running for server in self.servers)

    def faulted(self) -> None:
        self.fault_at = time.monotonic()

    async def kill(self, server: Server) -> None:
        """`kill -9` of one server process."""
        await asyncio.to_thread(server.kill)
        self.faulted()

    async def restart(self, server: Server) -> Server:
        """SIGTERM, then a new process on the same port and settings."""
        index = self.servers.index(server)
        await asyncio.to_thread(server.stop)
        self.faulted()
        name = f"{server.name}-again"
        again = Server(name, self.log_dir, server.env, port=server.port)
        self.own.append(again)
        await asyncio.to_thread(again.start)
        self.servers[index] = again
        return again

    async def pause(self, server: Server, seconds: float) -> None:
        """Stop the process (SIGSTOP) for `seconds`, then let it go on."""
        os.killpg(server.pid, signal.SIGSTOP)
        self.faulted()
        try:
            await asyncio.sleep(seconds)
        finally:
            os.killpg(server.pid, signal.SIGCONT)

    async def cut_database(self) -> None:
        """Terminate every connection to the database: the servers' pools, and
        this test's own."""
        assert await asyncio.to_thread(terminate_backends) > 0
        self.faulted()

    async def drop(self, page: "Page") -> None:
        await page.leave()
        self.faulted()

    def close_codes(self) -> list:
        return [ws.close_code for ws in self.sockets if ws.close_code is not None]

    async def converged(self, **live: int) -> None:
        """No page saw a 1011, and the database comes to hold exactly `live`
        (waiting tickets, active calls, desk sockets, consultants present), all
        of it held by a live socket on a running process: within grace +
        process timeout of the last fault, at once if none came since the
        last convergence."""
        if self.fault_at is None:
            deadline = time.monotonic() + SETTLES_WITHIN
        else:
            deadline = self.fault_at + self.timings.heals_within
        while True:
            state, problems = await self.read(queue_state, self.running, self.timings)
            if state == live and not problems:
                codes = self.close_codes()
                assert SERVER_ERROR not in codes, f"a socket closed with 1011: {codes}"
                self.fault_at = None
                self.healed = True
                return
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no convergence in time: holds {state}, expected {live};"
                    f" {problems}"
                )
            await asyncio.sleep(self.timings.heartbeat / 2)

    async def close(self) -> None:
        """Close every page's sockets. After a test that got as far as healing,
        none of them may have been closed with 1011 since."""
        for ws in self.sockets:
            await ws.close()
        if self.using == DEFAULT_DB_ALIAS:
            # A failover cut the connection of the thread that `sync_to_async`
            # runs ORM calls on too: the tests after this one would inherit it.
            await sync_to_async(close_quietly)()
        codes = self.close_codes()
        print(f"close codes seen: {codes}")
        if self.healed:
            assert SERVER_ERROR not in codes, f"a socket closed with 1011: {codes}"

    def stop_own(self) -> None:
        """Kill the servers that this site started itself (restarts, own sites)."""
        for server in self.own:
            server.kill()
            print(f"--- {server.name} log ---\n{server.log_tail(4000)}")


@contextmanager
def pair_site(log_dir: Path, redis: str) -> Iterator[Site]:
    """Two servers from `running_servers`, on the test's PostgreSQL database."""
    with running_servers(2, log_dir, redis) as started:
        for server in started:
            assert Timings(*(float(server.env[key]) for key in SHORT.env)) == SHORT
        site = Site(list(started), DEFAULT_DB_ALIAS, SHORT, log_dir)
        try:
            yield site
        finally:
            site.stop_own()


@contextmanager
def lone_site(backend: str, log_dir: Path, timings: Timings, **env) -> Iterator[Site]:
    """One server on the test's PostgreSQL database, or on a SQLite file named
    by URL (migrated first), with `timings` and `env` of its own."""
    if backend == "postgres":
        url, using = database_url(connection.settings_dict), DEFAULT_DB_ALIAS
    else:
        url, using = f"sqlite:///{log_dir / 'consult.sqlite3'}", SQLITE
    env = server_env(
        database_url=url,
        redis_url=redis_url(),
        secret_key=settings.SECRET_KEY,
        CHANNEL_PREFIX=f"test-{uuid.uuid4().hex[:12]}",
        PYTHONUNBUFFERED="1",
        **timings.env,
        **env,
    )
    aliased = contextlib.nullcontext(using)
    if backend == "sqlite":
        django_script(env, MIGRATE)
        aliased = sqlite_alias(log_dir / "consult.sqlite3")
    server = Server("server-lone", log_dir, env)
    with aliased:
        site = Site([server], using, timings, log_dir)
        site.own.append(server)
        try:
            server.start()
            yield site
        finally:
            site.stop_own()


@pytest.fixture
def postgres(transactional_db):
    """The test database; after a failover cut this thread's connection too,
    pytest-django's flush needs another."""
    yield
    close_quietly()


@pytest.fixture
def sqlite(django_db_blocker):
    """No test database: the test reads the servers' SQLite file by its alias."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(
    params=[
        # Marked, so that pytest-django sets the test database up for it.
        pytest.param("postgres", marks=pytest.mark.django_db(transaction=True)),
        "sqlite",
    ]
)
def backend(request) -> str:
    """The database of a lone server: PostgreSQL, or SQLite named by URL."""
    request.getfixturevalue(request.param)
    return request.param


@pytest.fixture
async def pair(postgres, tmp_path):
    """Two servers on PostgreSQL and the shared Redis."""
    with pair_site(tmp_path, redis_url()) as site:
        yield site
        await site.close()


@pytest.fixture
def private_redis(tmp_path):
    with started_redis(tmp_path, PRIVATE_REDIS_PORTS) as server:
        yield server


@pytest.fixture
async def pair_on_private_redis(postgres, private_redis, tmp_path):
    """Two servers on PostgreSQL and a Redis of their own, to restart."""
    with pair_site(tmp_path, private_redis.url) as site:
        yield site
        await site.close()


@pytest.fixture
async def lone(backend, tmp_path):
    """The only server, with the short timings, on the `backend` database."""
    with lone_site(backend, tmp_path, SHORT) as site:
        yield site
        await site.close()


@pytest.fixture
async def impatient(backend, tmp_path):
    """The only server, waiting 1 s (not 5) for a database connection: an
    outage closes a socket with 4013 after two such waits."""
    with lone_site(backend, tmp_path, SHORT, DATABASE_POOL_TIMEOUT="1") as site:
        yield site
        await site.close()


@pytest.fixture
async def restartable(backend, tmp_path):
    """The only server, with a process timeout that a restart fits in."""
    with lone_site(backend, tmp_path, RESTARTABLE) as site:
        yield site
        await site.close()


# --- the parties' moves ---------------------------------------------------------------


def callers(*pages: Caller) -> Callable[[dict], bool]:
    """A `queue` frame that lists exactly these callers, in this order."""
    tickets = [page.ticket for page in pages]
    return lambda frame: [c["ticket"] for c in frame["callers"]] == tickets


async def waiting(site: Site, caller_at: Server, desk_at: Server):
    """Ada's desk open on `desk_at`, a caller queued on `caller_at` with one
    candidate kept for her: (caller, desk)."""
    await site.consultant()
    desk = await site.desk(desk_at)
    caller = site.caller()
    queued = await caller.join(caller_at)
    assert queued["position"] == 1
    await caller.send("ice", candidate=CANDIDATE)
    await caller.ask("ping", "pong")  # frames are handled in order: it is kept
    await desk.frame("queue", until=callers(caller))
    return caller, desk


async def in_call(site: Site, caller_at: Server, desk_at: Server):
    """A call between a caller on `caller_at` and Ada's desk on `desk_at`:
    (caller, desk, consultation id)."""
    caller, desk = await waiting(site, caller_at, desk_at)
    got = await desk.ask("accept", "caller")
    assert (got["ticket"], got["candidates"]) == (caller.ticket, [CANDIDATE])
    await connect(caller, desk, got)
    return caller, desk, got["consultation"]


async def connect(caller: Caller, desk: Desk, got: dict) -> None:
    """The desk answers the caller it took; the caller gets `accepted`, and
    both report media connected."""
    await desk.send("answer", answer={"type": "answer", "sdp": ANSWER})
    accepted = await caller.frame("accepted")
    assert accepted["consultation"] == got["consultation"]
    assert accepted["answer"] == {"type": "answer", "sdp": ANSWER}
    # As the browsers do once ICE connects: the talk time starts. (Handled
    # once the pong is back: a hang-up right after could beat it otherwise.)
    for page in (caller, desk):
        await page.send("media", state="connected")
        await page.ask("ping", "pong")


async def relay_both_ways(caller: Caller, desk: Desk, candidate=CANDIDATE) -> None:
    await caller.send("ice", candidate=candidate)
    assert (await desk.frame("ice"))["candidate"] == candidate
    await desk.send("ice", candidate=candidate)
    assert (await caller.frame("ice"))["candidate"] == candidate


def admin_action(action: str, *pks) -> list[tuple[str, str]]:
    return [("action", action), *(("_selected_action", str(pk)) for pk in pks)]


# --- 1. PostgreSQL cuts every connection (a failover) ---------------------------------


@pytest.mark.parametrize("leaving", ["cancel", "close"])
async def test_a_failover_while_a_caller_waits_keeps_the_queue_working(pair, leaving):
    a, b = pair.servers
    caller, desk = await waiting(pair, caller_at=a, desk_at=b)

    await pair.cut_database()
    await caller.send("ice", candidate=END_OF_CANDIDATES)
    await caller.ask("ping", "pong")
    if leaving == "cancel":
        await caller.ask("cancel", "cancelled")
    else:
        await pair.drop(caller)
        reconnecting = await desk.frame("queue", until=callers(caller))
        assert reconnecting["callers"][0]["reconnecting"] is True
    await desk.frame("queue", until=callers(), wait=SHORT.heals_within)
    await pair.converged(waiting=0, calls=0, desks=1, present=1)


async def test_a_failover_before_an_accept_still_connects_the_call(pair):
    a, b = pair.servers
    caller, desk = await waiting(pair, caller_at=a, desk_at=b)

    await pair.cut_database()
    got = await desk.ask("accept", "caller")
    assert (got["ticket"], got["candidates"]) == (caller.ticket, [CANDIDATE])
    await connect(caller, desk, got)
    await relay_both_ways(caller, desk)
    await caller.send("hangup")
    assert await desk.frame("hangup") == {"type": "hangup", "by": "caller"}
    await pair.converged(waiting=0, calls=0, desks=1, present=1)


async def test_a_failover_mid_call_keeps_relaying_and_hangs_up(pair):
    a, b = pair.servers
    caller, desk, call = await in_call(pair, caller_at=a, desk_at=b)

    await pair.cut_database()
    await relay_both_ways(caller, desk)
    await pair.cut_database()
    await desk.send("hangup")
    assert await caller.frame("hangup") == {"type": "hangup", "by": "consultant"}
    await pair.converged(waiting=0, calls=0, desks=1, present=1)
    assert await pair.read(consultation_of, call) == ("completed", "consultant", "")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_database_outage_closes_with_4013_and_the_caller_resumes(impatient):
    (server,) = impatient.servers
    caller, desk = await waiting(impatient, caller_at=server, desk_at=server)

    await asyncio.to_thread(allow_connections, False)
    try:
        await impatient.cut_database()
        await caller.send("ice", candidate=END_OF_CANDIDATES)
        assert await caller.closed() == TRY_AGAIN
    finally:
        await asyncio.to_thread(allow_connections, True)
    comebacks = [await caller.come_back()]
    # The outage held the heartbeat up too: when it lasts longer than the
    # process timeout, the process takes itself for dead and closes every
    # socket with 4013 (docs/protocol.md, 8); each page comes back again.
    caller_saw, desk_saw = await asyncio.gather(
        caller.ride_out(PROCESS_TIMEOUT + HEARTBEAT),
        desk.ride_out(PROCESS_TIMEOUT + HEARTBEAT),
    )
    comebacks += [frame for frame in caller_saw if frame["type"] not in PUSHES]
    for back in comebacks:
        assert (back["type"], back["ticket"], back["position"]) == (
            "queued",
            caller.ticket,
            1,
        )
    # The desk saw the caller drop and come back (and it kept its place).
    last = [frame for frame in desk_saw if frame["type"] == "queue"][-1]
    assert callers(caller)(last)
    assert last["callers"][0]["reconnecting"] is False
    await impatient.converged(waiting=1, calls=0, desks=1, present=1)


# --- 2. Redis restarts (no persistence: it forgets everything) ------------------------


@contextlib.asynccontextmanager
async def redis_down(site: Site, redis: Redis, outage: float = 1.5):
    """Redis killed (it forgets everything); `outage` seconds after the block,
    started again on its port."""
    await asyncio.to_thread(redis.kill)
    site.faulted()
    yield
    await asyncio.sleep(outage)
    await asyncio.to_thread(redis.start)


async def test_a_redis_restart_mid_call_keeps_the_call_and_the_queue(
    pair_on_private_redis, private_redis
):
    site = pair_on_private_redis
    a, b = site.servers
    caller, desk, _ = await in_call(site, caller_at=a, desk_at=b)
    next_caller = site.caller()
    assert (await next_caller.join(a, name="Cy"))["position"] == 1

    async with redis_down(site, private_redis):
        # Sent while Redis is down: held back, delivered once it is up again.
        await caller.send("ice", candidate=END_OF_CANDIDATES)
    assert (await desk.frame("ice"))["candidate"] == END_OF_CANDIDATES

    await relay_both_ways(caller, desk)
    await desk.send("hangup")
    assert await caller.frame("hangup") == {"type": "hangup", "by": "consultant"}
    # The queue lives in the database: the next caller is still next.
    got = await desk.ask("accept", "caller")
    assert got["ticket"] == next_caller.ticket
    await connect(next_caller, desk, got)
    await relay_both_ways(next_caller, desk)
    await site.converged(waiting=0, calls=1, desks=1, present=1)
    await next_caller.send("hangup")
    assert await desk.frame("hangup") == {"type": "hangup", "by": "caller"}
    await site.converged(waiting=0, calls=0, desks=1, present=1)


async def test_a_logout_after_a_redis_restart_still_closes_the_desk(
    pair_on_private_redis, private_redis
):
    site = pair_on_private_redis
    a, b = site.servers
    caller, desk = await waiting(site, caller_at=a, desk_at=b)
    async with redis_down(site, private_redis, outage=0.5):
        pass
    # Each process finds the hub group forgotten at its next sweep: it joins it
    # again, pushes its desks' queues again (this one) and puts its desks back
    # in their consultants' groups.
    await desk.frame("queue", until=callers(caller))
    await asyncio.sleep(HEARTBEAT)

    status, _ = await asyncio.to_thread(desk.browser.post, a, "/accounts/logout/", [])
    assert status == 302
    refused = await caller.frame("refused", wait=AT_ONCE)
    assert refused.pop("move_token")
    assert refused == {"type": "refused", "reason": OFFLINE_REASON}
    assert await desk.closed(AT_ONCE) == NOT_LOGGED_IN
    await site.converged(waiting=0, calls=0, desks=0, present=0)


# --- 3. A server process killed (`kill -9`) or paused ---------------------------------


async def reconnecting_then(survivor: Page, type_: str) -> dict:
    """The survivor hears `peer` reconnecting once the death is noticed, then a
    frame of `type_` once the grace has run out."""
    peer = await survivor.frame("peer", wait=PROCESS_TIMEOUT + HEARTBEAT + 3)
    assert peer == {"type": "peer", "state": "reconnecting"}
    return await survivor.frame(type_, wait=GRACE + HEARTBEAT + 3)


async def test_a_killed_desk_process_ends_the_call_for_the_caller(pair):
    a, b = pair.servers
    caller, _, call = await in_call(pair, caller_at=a, desk_at=b)

    await pair.kill(b)
    hangup = await reconnecting_then(caller, "hangup")
    assert hangup == {"type": "hangup", "by": "consultant", "reason": "disconnected"}
    await caller.frame(
        "consultants", until=lambda f: f["consultants"][0]["status"] == "offline"
    )
    await pair.converged(waiting=0, calls=0, desks=0, present=0)
    outcome = await pair.read(consultation_of, call)
    assert outcome == ("disconnected", "consultant", "disconnected")


async def test_a_killed_caller_process_ends_the_call_for_the_desk(pair):
    a, b = pair.servers
    _, desk, call = await in_call(pair, caller_at=a, desk_at=b)

    await pair.kill(a)
    hangup = await reconnecting_then(desk, "hangup")
    assert hangup == {"type": "hangup", "by": "caller", "reason": "disconnected"}
    await pair.converged(waiting=0, calls=0, desks=1, present=1)
    outcome = await pair.read(consultation_of, call)
    assert outcome == ("disconnected", "caller", "disconnected")
    # The desk lives on, with nobody waiting.
    assert (await desk.ask("accept", "error"))["code"] == "queue_empty"


async def test_a_killed_desk_process_refuses_the_waiting_caller_after_grace(pair):
    a, b = pair.servers
    caller, _ = await waiting(pair, caller_at=a, desk_at=b)

    await pair.kill(b)
    refused = await caller.frame("refused", wait=SHORT.heals_within)
    assert refused.pop("move_token")
    assert refused == {"type": "refused", "reason": OFFLINE_REASON}
    assert time.monotonic() - pair.fault_at >= PROCESS_TIMEOUT + GRACE - 1
    await pair.converged(waiting=0, calls=0, desks=0, present=0)


async def test_a_killed_caller_process_ends_the_waiting_ticket_after_grace(pair):
    a, b = pair.servers
    caller, desk = await waiting(pair, caller_at=a, desk_at=b)

    await pair.kill(a)
    reconnecting = await desk.frame(
        "queue", until=callers(caller), wait=PROCESS_TIMEOUT + HEARTBEAT + 3
    )
    assert reconnecting["callers"][0]["reconnecting"] is True
    await desk.frame("queue", until=callers(), wait=GRACE + HEARTBEAT + 3)
    await pair.converged(waiting=0, calls=0, desks=1, present=1)


async def test_a_paused_process_closes_its_sockets_and_its_caller_resumes(pair):
    a, b = pair.servers
    caller, desk = await waiting(pair, caller_at=a, desk_at=b)

    # Long enough for the other process to take it for dead.
    await pair.pause(a, PROCESS_TIMEOUT + 1.5)
    reconnecting = await desk.frame("queue", until=callers(caller))
    assert reconnecting["callers"][0]["reconnecting"] is True
    assert await caller.closed(wait=2 * HEARTBEAT + 2) == TRY_AGAIN
    back = await caller.come_back()
    assert (back["type"], back["ticket"], back["position"]) == (
        "queued",
        caller.ticket,
        1,
    )
    back_in_queue = await desk.frame("queue", until=callers(caller))
    assert back_in_queue["callers"][0]["reconnecting"] is False
    await pair.converged(waiting=1, calls=0, desks=1, present=1)


# --- 4. Operators act from the admin, over HTTP to one of the servers -----------------


async def test_an_operator_ending_a_call_tells_both_pages_at_once(pair):
    a, b = pair.servers
    caller, desk, call = await in_call(pair, caller_at=a, desk_at=b)
    lead = await pair.operator(a)

    status, _ = await asyncio.to_thread(
        lead.post, a, "/admin/consult/consultation/", admin_action("end_calls", call)
    )
    assert status == 302
    told = {"type": "hangup", "by": "operator", "reason": "ended_by_operator"}
    heard = await asyncio.gather(
        caller.frame("hangup", wait=AT_ONCE), desk.frame("hangup", wait=AT_ONCE)
    )
    assert heard == [told, told]
    await pair.converged(waiting=0, calls=0, desks=1, present=1)
    assert await pair.read(consultation_of, call) == (
        "completed",
        "operator",
        "ended_by_operator",
    )


async def test_an_operator_removing_a_caller_tells_the_caller_and_desk_at_once(pair):
    a, b = pair.servers
    caller, desk = await waiting(pair, caller_at=a, desk_at=b)
    lead = await pair.operator(b)

    status, _ = await asyncio.to_thread(
        lead.post,
        b,
        "/admin/consult/ticket/",
        admin_action("remove_from_queue", caller.ticket),
    )
    assert status == 302
    refused, _ = await asyncio.gather(
        caller.frame("refused", wait=AT_ONCE),
        # A push within the merge window of the last one waits for its end.
        desk.frame("queue", until=callers(), wait=AT_ONCE + COALESCE),
    )
    assert refused == {
        "type": "refused",
        "reason": "An operator removed you from the queue.",
    }
    await pair.converged(waiting=0, calls=0, desks=1, present=1)


# --- 5. Logout and deactivation, handled by the other process -------------------------


async def test_a_logout_on_the_other_process_closes_the_desk_at_once(pair):
    a, b = pair.servers
    caller, desk = await waiting(pair, caller_at=a, desk_at=b)

    status, _ = await asyncio.to_thread(desk.browser.post, a, "/accounts/logout/", [])
    assert status == 302
    code, refused = await asyncio.gather(
        desk.closed(AT_ONCE), caller.frame("refused", wait=AT_ONCE)
    )
    assert code == NOT_LOGGED_IN
    assert refused.pop("move_token")
    assert refused == {"type": "refused", "reason": OFFLINE_REASON}
    await pair.converged(waiting=0, calls=0, desks=0, present=0)
    # The old session opens no desk on either process.
    for server in (a, b):
        old = Desk(pair.sockets, desk.browser, cookie=desk.cookie)
        assert await old.refused_at(server) == NOT_LOGGED_IN
    await pair.converged(waiting=0, calls=0, desks=0, present=0)


async def test_a_deactivation_on_the_other_process_closes_the_desk_at_once(pair):
    a, b = pair.servers
    caller, desk, call = await in_call(pair, caller_at=a, desk_at=b)
    next_caller = pair.caller()
    await next_caller.join(a, name="Cy")
    lead = await pair.operator(a)
    ada, user = await pair.read(
        lambda using: Consultant.objects.using(using).values_list("pk", "user").get()
    )

    # The admin's change form, with "active" unticked.
    form = [
        ("user", str(user)),
        ("slug", "ada"),
        ("name", "Ada"),
        ("title", ""),
        ("max_queue", "20"),
        ("_save", "Save"),
    ]
    path = f"/admin/consult/consultant/{ada}/change/"
    status, page = await asyncio.to_thread(lead.post, a, path, form)
    assert status == 302, page[-2000:]
    code, hangup, refused = await asyncio.gather(
        desk.closed(AT_ONCE),
        caller.frame("hangup", wait=AT_ONCE),
        next_caller.frame("refused", wait=AT_ONCE),
    )
    assert code == NOT_CONSULTANT
    assert hangup == {"type": "hangup", "by": "consultant", "reason": "left"}
    assert refused.pop("move_token")
    assert refused == {"type": "refused", "reason": OFFLINE_REASON}
    await pair.converged(waiting=0, calls=0, desks=0, present=0)
    assert await pair.read(consultation_of, call) == ("completed", "consultant", "left")


# --- 6. The only process restarts -----------------------------------------------------


async def test_a_restart_of_the_only_process_lets_every_page_come_back(restartable):
    site = restartable
    (server,) = site.servers
    caller, desk, call = await in_call(site, caller_at=server, desk_at=server)
    next_caller = site.caller()
    assert (await next_caller.join(server, name="Cy"))["position"] == 1

    server = await site.restart(server)
    for page in (caller, next_caller, desk):
        assert await page.closed() in GONE
    # Callers first: each resumes on the new process and keeps its place.
    assert await caller.come_back() == {
        "type": "resumed",
        "consultation": call,
        "consultant": {"slug": "ada", "name": "Ada"},
    }
    back = await next_caller.come_back()
    assert (back["type"], back["ticket"], back["position"]) == (
        "queued",
        next_caller.ticket,
        1,
    )
    queue = await desk.come_back()
    assert callers(next_caller)(queue)
    assert await desk.frame("resumed", skip=()) == {
        "type": "resumed",
        "consultation": call,
        "caller": {"ticket": caller.ticket, "name": "Bo"},
    }
    assert await caller.frame("peer") == {"type": "peer", "state": "back"}

    await relay_both_ways(caller, desk)
    await site.converged(waiting=1, calls=1, desks=1, present=1)
    await desk.send("hangup")
    assert await caller.frame("hangup") == {"type": "hangup", "by": "consultant"}
    got = await desk.ask("accept", "caller")
    assert got["ticket"] == next_caller.ticket
    await connect(next_caller, desk, got)
    await next_caller.send("hangup")
    assert await desk.frame("hangup") == {"type": "hangup", "by": "caller"}
    await site.converged(waiting=0, calls=0, desks=1, present=1)


# --- SQLite named by URL: a caller who leaves, another who comes back -----------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_caller_who_leaves_is_settled_and_one_who_comes_back_keeps_place(
    lone,
):
    (server,) = lone.servers
    leaver, desk = await waiting(lone, caller_at=server, desk_at=server)
    stayer = lone.caller()
    assert (await stayer.join(server, name="Cy"))["position"] == 2

    await lone.drop(leaver)
    await stayer.leave()
    back = await stayer.come_back()
    assert (back["type"], back["ticket"], back["position"]) == (
        "queued",
        stayer.ticket,
        2,
    )
    reconnecting = await desk.frame("queue", until=callers(leaver, stayer))
    assert [c["reconnecting"] for c in reconnecting["callers"]] == [True, False]
    # Once the leaver's grace is over, the one who came back moves up.
    moved = await stayer.frame("position", wait=SHORT.heals_within)
    assert moved["position"] == 1
    await desk.frame("queue", until=callers(stayer))
    await lone.converged(waiting=1, calls=0, desks=1, present=1)
