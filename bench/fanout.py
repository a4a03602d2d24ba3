"""The `fanout` scenario: one change, thousands of sockets to tell.

A. Lobby: caller sockets that only watch the lobby; the desk flips between
   `away` and `online`; time until every socket has a `consultants` push with
   the new status, and server CPU per change, at several socket counts.
B. Queue: callers queued for one consultant; the desk accepts the head; time
   until every other caller has its new `position`.

Changes are spaced by more than the coalescing window, so each one is the
first of its window and pushed at once. Times are taken when the generator
reads the frame, so they include the generator's own lag (an upper bound).
"""

import asyncio
import time

from .client import BenchError
from .crowd import Crowd
from .idle import Desk
from .measure import Usage, memory_kb

COALESCE_GAP = 1.5  # > CONSULT_COALESCE_SECONDS (1 s)
DEADLINE = 30


class Watch:
    """Counts sockets that reached the awaited state since `arm()`."""

    def __init__(self):
        self.pending: set = set()
        self.done = asyncio.Event()
        self.last = 0.0
        self.test = None

    def arm(self, callers, test) -> None:
        self.pending = {id(c) for c in callers}
        self.test = test
        self.done.clear()

    def on_frame(self, caller, frame) -> None:
        if self.test and id(caller) in self.pending and self.test(caller, frame):
            self.pending.discard(id(caller))
            self.last = time.monotonic()
            if not self.pending:
                self.done.set()

    async def measure(self, act, usage: Usage) -> dict:
        usage.start()
        started = time.monotonic()
        await act()
        try:
            await asyncio.wait_for(self.done.wait(), DEADLINE)
            missing = 0
        except TimeoutError:
            missing = len(self.pending)
        cpu = usage.cpu()
        self.test = None
        return {"all_s": self.last - started, "cpu_ms": 1000 * cpu, "missing": missing}


def lobby_status(status: str):
    def test(caller, frame):
        if frame["type"] != "consultants":
            return False
        return any(
            c["slug"] == "b0" and c["status"] == status for c in frame["consultants"]
        )

    return test


async def lobby_changes(stack, sessions, levels, changes, compression) -> dict:
    watch = Watch()
    crowd = Crowd(stack.config.ws, compression=compression, on_frame=watch.on_frame)
    desk = await Desk.open(stack, sessions, compression=compression)
    usage = Usage(stack.server_pid)
    result = {}
    for level in levels:
        rate = await crowd.grow(level)
        await asyncio.sleep(COALESCE_GAP)
        rows = []
        for i in range(changes):
            status = "away" if i % 2 == 0 else "online"
            watch.arm(crowd.callers, lobby_status(status))
            rows.append(
                await watch.measure(
                    lambda s=status: desk.peer.send("status", status=s), usage
                )
            )
            await asyncio.sleep(COALESCE_GAP)
        result[str(level)] = {
            "sockets": crowd.open_count(),
            "connects_per_s": rate,
            "rss_mb": memory_kb(stack.server_pid)["rss"] / 1024,
            "changes": rows,
        }
        print(f"    lobby {level}: {result[str(level)]}", flush=True)
    result["closed_by_server"] = crowd.closed_by_server()
    result["errors"] = dict(crowd.errors)
    stack.stop_server(graceful=False)
    crowd.abort()
    await desk.close()
    return result


async def queue_accepts(stack, sessions, queued, rounds, compression) -> dict:
    watch = Watch()
    crowd = Crowd(stack.config.ws, compression=compression, on_frame=watch.on_frame)
    desk = await Desk.open(stack, sessions, compression=compression)
    usage = Usage(stack.server_pid)
    rate = await crowd.grow(queued, join="b0")
    await asyncio.sleep(COALESCE_GAP * 2)
    rows, errors = [], dict(crowd.errors)
    for _ in range(rounds):
        waiting = sorted(
            (c for c in crowd.callers if c.position and c.closed_code is None),
            key=lambda c: c.position,
        )
        head, rest = waiting[0], waiting[1:]
        expected = {id(c): c.position - 1 for c in rest}

        def moved_up(caller, frame, expected=expected):
            return frame["type"] == "position" and caller.position == expected.get(
                id(caller)
            )

        watch.arm(rest, moved_up)
        head.position = None
        row = await watch.measure(lambda: desk.peer.send("accept"), usage)
        try:
            await desk.expect("caller", DEADLINE)
            await desk.peer.send("hangup")
        except BenchError as error:
            errors[error.kind] = errors.get(error.kind, 0) + 1
        rows.append(row | {"waiting": len(rest)})
        await asyncio.sleep(COALESCE_GAP * 2)
    result = {
        "sockets": crowd.open_count(),
        "connects_per_s": rate,
        "rounds": rows,
        "closed_by_server": crowd.closed_by_server(),
        "errors": errors,
    }
    stack.stop_server(graceful=False)
    crowd.abort()
    await desk.close()
    return result


def summarize(rows: list[dict]) -> dict:
    """Median time to all sockets and CPU per change; the worst change too."""
    times = sorted(r["all_s"] for r in rows)
    cpus = sorted(r["cpu_ms"] for r in rows)
    return {
        "all_s_median": times[len(times) // 2],
        "all_s_max": times[-1],
        "cpu_ms_median": cpus[len(cpus) // 2],
        "missing": sum(r["missing"] for r in rows),
    }


async def run(stack, sessions, *, lobby, queued, changes, compression) -> dict:
    result = {}
    if lobby:
        found = await lobby_changes(stack, sessions, lobby, changes, compression)
        for level in lobby:
            found[str(level)] |= summarize(found[str(level)]["changes"])
        result["lobby"] = found
    if queued:
        if lobby:
            stack.restart_server()
        found = await queue_accepts(
            stack, sessions, queued, max(1, changes // 2), compression
        )
        found |= summarize(found["rounds"])
        result["queue"] = found
    return result
