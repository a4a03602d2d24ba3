"""Many caller sockets at once, each drained by its own reader task.

Every socket must be read all the time: one that is not lets the server's
send buffer for it grow, which is what we measure, not what clients do.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed

from .client import BenchError, Peer

CONNECTING_AT_ONCE = 64


class Caller:
    def __init__(self, peer: Peer, on_frame: Callable[["Caller", dict], None]):
        self.peer = peer
        self.on_frame = on_frame
        self.position: int | None = None
        self.pong = asyncio.Event()
        self.closed_code: int | None = None
        self.reader: asyncio.Task | None = None

    async def read(self) -> None:
        try:
            async for raw in self.peer.ws:
                frame = json.loads(raw)
                if frame["type"] == "pong":
                    self.pong.set()
                elif frame["type"] == "position":
                    self.position = frame["position"]
                self.on_frame(self, frame)
        except ConnectionClosed:
            pass
        self.closed_code = self.peer.ws.close_code or -1


class Crowd:
    """Caller sockets on one server; `grow(n)` opens more, optionally queued."""

    def __init__(self, base: str, *, compression: bool, on_frame=None):
        self.base = base
        self.compression = compression
        self.on_frame = on_frame or (lambda caller, frame: None)
        self.callers: list[Caller] = []
        self.errors: Counter = Counter()

    async def _open_one(self, join, gate: asyncio.Semaphore, deadline: float) -> None:
        async with gate:
            if time.monotonic() > deadline:
                self.errors["generator:ramp_deadline"] += 1
                return
            try:
                peer = await Peer.open(
                    self.base, "/ws/call/", compression=self.compression, wait=60
                )
                await peer.expect("hello", 60)
                caller = Caller(peer, self.on_frame)
                if join:
                    offer = {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 40}
                    await peer.send("join", consultant=join, name="Idle", offer=offer)
                    caller.position = (await peer.expect("queued", 60))["position"]
            except BenchError as error:
                self.errors[error.kind] += 1
                return
        caller.reader = asyncio.create_task(caller.read())
        self.callers.append(caller)

    async def grow(
        self, total: int, *, join: str | None = None, within: float = 300
    ) -> float:
        """Open sockets until there are `total`; returns connects per second.

        No new socket is started after `within` seconds: a server that slows
        down as it fills must not hold the run hostage.
        """
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
        started, before = time.monotonic(), len(self.callers)
        deadline = started + within
        await asyncio.gather(
            *(
                self._open_one(join, gate, deadline)
                for _ in range(total - len(self.callers))
            )
        )
        return (len(self.callers) - before) / (time.monotonic() - started)

    def open_count(self) -> int:
        return sum(1 for c in self.callers if c.closed_code is None)

    def closed_by_server(self) -> dict:
        return dict(Counter(c.closed_code for c in self.callers if c.closed_code))

    async def ping_all(self, wait: float = 30) -> int:
        """How many open sockets answer `ping` with `pong` within `wait`."""
        alive = [c for c in self.callers if c.closed_code is None]
        for caller in alive:
            caller.pong.clear()
            try:
                await caller.peer.send("ping")
            except BenchError:
                continue
        waits = [asyncio.wait_for(c.pong.wait(), wait) for c in alive]
        answers = await asyncio.gather(*waits, return_exceptions=True)
        return sum(1 for a in answers if a is True)

    def abort(self) -> None:
        """Drop every socket at once, without closing handshakes."""
        for caller in self.callers:
            if caller.reader:
                caller.reader.cancel()
            transport = caller.peer.ws.transport
            if transport is not None:
                transport.abort()
        self.callers.clear()
