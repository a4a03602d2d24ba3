"""The generator's side of the contract: login over HTTP, and one WebSocket peer.

Relay latency is measured with send timestamps carried inside the payloads:
an `a=x-bench-ts:` line in the SDP and the foundation of each ICE candidate.
"""

import asyncio
import http.client
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

PUSHES = {"consultants", "position", "queue", "peer"}
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_TS_LINE = re.compile(r"a=x-bench-ts:(\d+)")


class BenchError(Exception):
    """A failure, its `kind` counted in the report (e.g. `timeout:accepted`);
    `retry_after` (seconds) when the server said when to try again."""

    def __init__(self, kind: str, retry_after: float | None = None):
        super().__init__(kind)
        self.kind = kind
        self.retry_after = retry_after


_addresses = itertools.count()


def next_address() -> str:
    """A client address for X-Forwarded-For, as our proxy would write it.

    Every socket gets its own, from 198.18.0.0/15 (RFC 2544's benchmarking
    range; only ever a header value here), as if each came from its own
    client: the server's per-address caps are for abuse, not for this load.
    """
    n = next(_addresses) % (1 << 17)
    return f"198.{18 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def now_us() -> int:
    return time.monotonic_ns() // 1000


# --- payloads with timestamps ----------------------------------------------


def sdp(kind: str, size: int) -> str:
    """A session description of about `size` bytes carrying its send time."""
    head = (
        f"v=0\r\no=- {now_us()} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        f"a=x-bench-ts:{now_us()}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    )
    filler = f"a=x-bench-{kind}:" + "f" * 60 + "\r\n"
    return head + filler * max(0, (size - len(head)) // len(filler))


def candidate(index: int) -> dict:
    return {
        "candidate": f"candidate:{now_us()} 1 udp 2122260223 127.0.0.1 "
        f"{50000 + index} typ host generation 0 ufrag abcd network-id 1",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }


def sent_at(frame: dict) -> int | None:
    """The send timestamp (µs) inside a relayed SDP or candidate."""
    if frame["type"] == "ice":
        head = frame["candidate"]["candidate"].split(" ", 1)[0]
        return int(head.split(":", 1)[1])
    for key in ("offer", "answer"):
        if isinstance(frame.get(key), dict):
            found = _TS_LINE.search(frame[key]["sdp"])
            return int(found.group(1)) if found else None
    return None


# --- login --------------------------------------------------------------------


def login(host: str, port: int, username: str, password: str) -> str:
    """Log in through /accounts/login/ as a browser would; the session cookie value.

    With DEBUG off the cookies are Secure, which a client over plain http
    would not send back: the Cookie header is written by hand.
    """
    conn = http.client.HTTPConnection(host, port, timeout=30)
    address = {"X-Forwarded-For": next_address()}
    try:
        conn.request("GET", "/accounts/login/", headers=address)
        page = conn.getresponse()
        body = page.read().decode()
        if page.status != 200:
            raise BenchError(f"login:get {page.status}")
        csrf = _cookies(page)["csrftoken"]
        token = _CSRF_INPUT.search(body).group(1)
        form = urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token}
        )
        conn.request(
            "POST",
            "/accounts/login/",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf}",
            }
            | address,
        )
        answer = conn.getresponse()
        answer.read()
        session = _cookies(answer).get("sessionid")
        if answer.status != 302 or not session:
            raise BenchError(f"login:post {answer.status}")
        return session
    finally:
        conn.close()


def _cookies(response) -> dict:
    jar = SimpleCookie()
    for header in response.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


# --- one socket -----------------------------------------------------------------


class Peer:
    """One WebSocket speaking the contract; frames not yet awaited wait in a backlog."""

    def __init__(self, ws, on_frame: Callable[[dict, int], None] | None = None):
        self.ws = ws
        self.backlog: deque[dict] = deque()
        self.on_frame = on_frame

    @classmethod
    async def open(
        cls,
        base: str,
        path: str,
        *,
        session: str | None = None,
        compression: bool = True,
        on_frame=None,
        wait: float = 30,
    ) -> "Peer":
        headers = {"X-Forwarded-For": next_address()}
        if session:
            headers["Cookie"] = f"sessionid={session}"
        origin = base.replace("ws://", "http://")
        try:
            ws = await connect(
                base + path,
                origin=origin,
                additional_headers=headers,
                compression="deflate" if compression else None,
                open_timeout=wait,
                ping_interval=None,
                close_timeout=5,
                proxy=None,
                max_size=None,  # a desk's `queue` of 10k callers is 1 MB+
            )
        except InvalidStatus as error:
            raise BenchError(f"connect:http {error.response.status_code}") from None
        except TimeoutError:
            raise BenchError("connect:timeout") from None
        except InvalidHandshake as error:
            raise BenchError(f"connect:{type(error).__name__}") from None
        except OSError as error:
            raise BenchError(f"connect:{type(error).__name__}") from None
        return cls(ws, on_frame)

    @property
    def deflate(self) -> bool:
        return any(
            "permessage-deflate" in e.name for e in self.ws.protocol.extensions or []
        )

    async def send(self, type_: str, **fields) -> None:
        try:
            await self.ws.send(json.dumps({"type": type_, **fields}))
        except ConnectionClosed as error:
            raise BenchError(_closed(error)) from None

    async def _next(self) -> dict:
        try:
            raw = await self.ws.recv()
        except ConnectionClosed as error:
            raise BenchError(_closed(error)) from None
        frame = json.loads(raw)
        if self.on_frame is not None:
            self.on_frame(frame, now_us())
        return frame

    async def expect(self, type_: str, wait: float) -> dict:
        """The next frame of `type_`; pushes are skipped, others kept for later."""
        for frame in self.backlog:
            if frame["type"] == type_:
                self.backlog.remove(frame)
                return frame
        try:
            async with asyncio.timeout(wait):
                while True:
                    frame = await self._next()
                    if frame["type"] == type_:
                        return frame
                    if frame["type"] == "error":
                        hint = frame.get("retry_after")
                        raise BenchError(f"error:{frame['code']}", hint)
                    if frame["type"] not in PUSHES:
                        self.backlog.append(frame)
        except TimeoutError:
            raise BenchError(f"timeout:{type_}") from None

    async def listen(self) -> None:
        """Read every frame (each goes to `on_frame`) until the socket closes."""
        while True:
            await self._next()

    async def close(self) -> None:
        try:
            await self.ws.close()
        except Exception:  # noqa: S110 (closing a socket that is gone is fine)
            pass


def _closed(error: ConnectionClosed) -> str:
    code = error.rcvd.code if error.rcvd else "no-close-frame"
    return f"closed:{code}"
