"""Several `daphne` processes on this test's database (started by `tests.live`),
and a `websockets` client that speaks the protocol to them over loopback."""

import asyncio
import http.client
import json
import re
import time
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from websockets.asyncio.client import connect

from tests.factories import ANSWER, OFFER, PASSWORD, make_consultant
from tests.live import HOST, Server, daphne, free_port, server_env

TIMEOUT = 10
# Pushes that fan out to every socket and may come between any two answers.
PUSHES = {"consultants", "position", "queue"}

# SDP is relayed byte for byte, whatever it holds.
ODD_OFFER = OFFER + "a=tool:caf\u00e9 \u2603 \t\r\na=x-empty:\r\n"
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}
END_OF_CANDIDATES = {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}


def database_url(settings_dict: dict) -> str:
    """The URL of the database this test runs on (the one pytest-django created)."""
    if not settings_dict["ENGINE"].endswith("postgresql"):
        raise RuntimeError("server processes share PostgreSQL; set DATABASE_URL")
    user = quote(settings_dict["USER"] or "", safe="")
    password = settings_dict["PASSWORD"]
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = settings_dict["HOST"] or HOST
    port = settings_dict["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"


@contextmanager
def running_servers(
    count: int,
    log_dir: Path,
    redis_url: str,
    *,
    args: Sequence[str] = (),
    **overrides: str,
):
    """`count` servers on this test's database, each answering; killed on exit,
    their logs printed (pytest shows them when the test failed). `args` go to
    the server's command line (`--ping-interval 5`); `overrides` adds or
    replaces variables of their environment."""
    env = server_env(
        database_url=database_url(connection.settings_dict),
        redis_url=redis_url,
        secret_key=settings.SECRET_KEY,
        **{
            # Channel names of this test alone, and short liveness timings.
            "CHANNEL_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
            "CONSULT_GRACE_SECONDS": "3",
            "CONSULT_HEARTBEAT_SECONDS": "0.5",
            "CONSULT_PROCESS_TIMEOUT_SECONDS": "2",
            # A process killed with -9 leaves its last lines in the log.
            "PYTHONUNBUFFERED": "1",
            **overrides,
        },
    )
    ports = [free_port() for _ in range(count)]
    servers = [
        Server(f"server-{i}", log_dir, env, port=port, command=daphne(port, args=args))
        for i, port in enumerate(ports)
    ]
    try:
        for server in servers:
            server.start(wait=False)
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.kill()
            print(f"--- {server.name} log ---\n{server.log_tail(4000)}")


def submit_login(
    server: Server, path: str, username: str, password: str, *, timeout: float = 5
) -> tuple[int, http.client.HTTPResponse | None]:
    """GET the login form at `path`, then POST `username` and `password` to it
    with its CSRF token: (the GET's status, the POST's response, read), the
    response None when the GET did not answer 200."""
    status, headers, page = server.get(path)
    if status != 200:
        return status, None
    csrf = _cookie(headers, "csrftoken")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    body = urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    )
    conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf}",
            },
        )
        response = conn.getresponse()
        response.read()
        return status, response
    finally:
        conn.close()


def login(server: Server, username: str, password: str) -> str:
    """Log in through the login form; the `Cookie` header of the session."""
    status, response = submit_login(server, "/accounts/login/", username, password)
    assert response is not None, f"login page: {status}"
    assert response.status == 302, f"login failed: {response.status}"
    return f"sessionid={_cookie(response.headers, 'sessionid')}"


def _cookie(headers, name: str) -> str:
    for header in headers.get_all("Set-Cookie") or []:
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie in {headers.get_all('Set-Cookie')}")


class Peer:
    """A protocol client on one WebSocket."""

    def __init__(self, ws):
        self.ws = ws

    @classmethod
    async def open(cls, server: Server, path: str, cookie: str | None = None):
        ws = await connect(
            f"ws://{HOST}:{server.port}{path}",
            origin=server.origin,
            additional_headers={"Cookie": cookie} if cookie else None,
            proxy=None,
            open_timeout=TIMEOUT,
            ping_interval=None,
            close_timeout=1,
        )
        return cls(ws)

    async def send(self, type_: str, **fields) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def receive(self, wait: float = TIMEOUT) -> dict:
        return json.loads(await asyncio.wait_for(self.ws.recv(), wait))

    async def expect(self, type_: str, wait: float = TIMEOUT) -> dict:
        """The next frame that is not a fan-out push; it must be of `type_`."""
        deadline = time.monotonic() + wait
        while True:
            frame = await self.receive(max(deadline - time.monotonic(), 0.01))
            if frame["type"] not in PUSHES:
                assert frame["type"] == type_, frame
                return frame

    async def push(self, type_: str, until, wait: float = TIMEOUT) -> dict:
        """The first `type_` push for which `until(frame)` holds; other pushes pass."""
        deadline = time.monotonic() + wait
        while True:
            frame = await self.receive(max(deadline - time.monotonic(), 0.01))
            assert frame["type"] in PUSHES | {"peer"}, frame
            if frame["type"] == type_ and until(frame):
                return frame

    async def close(self) -> None:
        await self.ws.close()


async def set_up_call(caller_server, desk_server):
    """A desk on one server, a caller on the other, in a call: (caller, desk)."""
    await database_sync_to_async(make_consultant)("ada", presence="offline")
    cookie = await database_sync_to_async(login)(desk_server, "ada", PASSWORD)
    desk = await Peer.open(desk_server, "/ws/desk/", cookie)
    hello = await desk.expect("hello")
    assert hello["consultant"]["slug"] == "ada"
    assert await desk.receive() == {"type": "queue", "callers": [], "callbacks": []}

    caller = await Peer.open(caller_server, "/ws/call/")
    hello = await caller.expect("hello")
    assert {"slug": "ada", "status": "online"}.items() <= hello["consultants"][
        0
    ].items()
    await caller.send(
        "join", consultant="ada", name="Bo", offer={"type": "offer", "sdp": ODD_OFFER}
    )
    queued = await caller.expect("queued")
    assert queued["position"] == 1
    await caller.send("ice", candidate=CANDIDATE)
    # A socket's frames are handled in order: after this pong, it is stored.
    await caller.send("ping")
    await caller.expect("pong")

    # The queue change crosses to the desk's process through the hub group.
    queue = await desk.push("queue", lambda frame: frame["callers"])
    assert [c["ticket"] for c in queue["callers"]] == [queued["ticket"]]

    await desk.send("accept")
    got = await desk.expect("caller")
    assert got["ticket"] == queued["ticket"]
    assert got["offer"] == {"type": "offer", "sdp": ODD_OFFER}
    assert got["candidates"] == [CANDIDATE]
    await desk.send("answer", answer={"type": "answer", "sdp": ANSWER})
    accepted = await caller.expect("accepted")
    assert accepted["consultation"] == got["consultation"]
    assert accepted["answer"] == {"type": "answer", "sdp": ANSWER}
    # As the browsers do once ICE connects: the talk time starts.
    await caller.send("media", state="connected")
    await desk.send("media", state="connected")
    return caller, desk


def postgres_admin(sql: str, *params) -> list:
    """Run `sql` on a connection of its own to the maintenance database."""
    info = connection.settings_dict
    with psycopg.connect(
        host=info["HOST"] or HOST,
        port=info["PORT"] or None,
        user=info["USER"] or None,
        password=info["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        cursor = admin.execute(sql, params)
        return cursor.fetchall() if cursor.description else []
