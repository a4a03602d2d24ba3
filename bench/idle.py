"""The `idle` scenario: waiting callers ramped up to 10,000 sockets on one process.

All callers join one consultant (seeded with a high `max_queue`) whose desk is
open, so each socket holds a live ticket, a place in the hub and the pushes
that go with it. Memory per socket is the server's RSS growth over the level.
"""

import asyncio
import json

from .client import PUSHES, BenchError, Peer
from .crowd import Crowd
from .measure import memory_kb

SETTLE_SECONDS = 3


class Desk:
    """b0's desk, read all the time; frames other than pushes wait in `frames`."""

    def __init__(self, peer: Peer):
        self.peer = peer
        self.frames: asyncio.Queue = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, stack, sessions: dict, *, compression: bool) -> "Desk":
        peer = await Peer.open(
            stack.config.ws,
            "/ws/desk/",
            session=sessions["b0"],
            compression=compression,
        )
        await peer.expect("hello", 30)
        return cls(peer)

    async def _read(self) -> None:
        async for raw in self.peer.ws:
            frame = json.loads(raw)
            if frame["type"] not in PUSHES:
                self.frames.put_nowait(frame)

    async def expect(self, type_: str, wait: float) -> dict:
        try:
            async with asyncio.timeout(wait):
                while (frame := await self.frames.get())["type"] != type_:
                    if frame["type"] == "error":
                        raise BenchError(f"error:{frame['code']}")
        except TimeoutError:
            raise BenchError(f"timeout:{type_}") from None
        return frame

    async def close(self) -> None:
        self.reader.cancel()
        await self.peer.close()


async def run(stack, sessions, *, levels: list[int], hold: float, compression: bool):
    desk = await Desk.open(stack, sessions, compression=compression)
    crowd = Crowd(stack.config.ws, compression=compression)
    await asyncio.sleep(SETTLE_SECONDS)
    base_kb = memory_kb(stack.server_pid)["rss"]
    result = {"base_rss_mb": base_kb / 1024, "deflate": desk.peer.deflate}
    for level in levels:
        rate = await crowd.grow(level, join="b0")
        await asyncio.sleep(SETTLE_SECONDS)  # let the coalesced pushes go out
        rss = memory_kb(stack.server_pid)["rss"]
        result[str(level)] = {
            "sockets": crowd.open_count(),
            "connects_per_s": rate,
            "rss_mb": rss / 1024,
            "kb_per_socket": (rss - base_kb) / max(1, len(crowd.callers)),
        }
        print(f"    {level}: {result[str(level)]}", flush=True)
    if hold:
        await asyncio.sleep(hold)
        result["after_hold"] = {
            "hold_s": hold,
            "open": crowd.open_count(),
            "answered_ping": await crowd.ping_all(),
        }
    result["closed_by_server"] = crowd.closed_by_server()
    result["errors"] = dict(crowd.errors)
    stack.stop_server(graceful=False)
    crowd.abort()
    await desk.close()
    return result
