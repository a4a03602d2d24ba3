"""The `calls` scenario: whole consultations, from desk connect to both closes.

Closed loop: N caller/consultant pairs each run calls back to back. Open
loop (`rate`): a new call starts every 1/rate seconds with a free consultant.
Only what happens inside the measuring window (after the warm-up) counts.
"""

import asyncio
import os
import random
import time
from collections import Counter
from contextlib import suppress

from .client import BenchError, Peer, candidate, now_us, sdp, sent_at
from .measure import Usage, latency_summary, memory_kb

OFFER_BYTES = 3000
ANSWER_BYTES = 2000
CANDIDATES = 8
# Which relayed frame measures what (its send timestamp is inside it).
LATENCY_OF = {"caller": "offer", "accepted": "answer", "ice": "ice"}


class Recorder:
    """Latencies and outcomes, kept only while the measuring window is open."""

    def __init__(self):
        self.open = False
        self.latency: dict[str, list[int]] = {k: [] for k in (*LATENCY_OF.values(),)}
        self.latency["setup"] = []
        self.errors: Counter = Counter()
        self.calls = 0
        self.deflate: set[bool] = set()

    def on_frame(self, frame: dict, received_us: int) -> None:
        kind = LATENCY_OF.get(frame["type"])
        if kind and self.open and (stamp := sent_at(frame)) is not None:
            self.latency[kind].append(received_us - stamp)


async def one_call(base, slug, session, recorder, *, compression, wait) -> None:
    desk = caller = None
    try:
        desk = await Peer.open(
            base,
            "/ws/desk/",
            session=session,
            compression=compression,
            on_frame=recorder.on_frame,
            wait=wait,
        )
        recorder.deflate.add(desk.deflate)
        await desk.expect("hello", wait)
        await desk.expect("queue", wait)
        started = now_us()
        caller = await Peer.open(
            base,
            "/ws/call/",
            compression=compression,
            on_frame=recorder.on_frame,
            wait=wait,
        )
        await caller.expect("hello", wait)
        offer = {"type": "offer", "sdp": sdp("offer", OFFER_BYTES)}
        await caller.send("join", consultant=slug, name="Bench caller", offer=offer)
        await caller.expect("queued", wait)
        await desk.send("accept")
        await desk.expect("caller", wait)
        await desk.send(
            "answer", answer={"type": "answer", "sdp": sdp("answer", ANSWER_BYTES)}
        )
        for i in range(CANDIDATES):
            await desk.send("ice", candidate=candidate(i))
        await caller.expect("accepted", wait)
        if recorder.open:
            recorder.latency["setup"].append(now_us() - started)
        for i in range(CANDIDATES):
            await caller.send("ice", candidate=candidate(i))
        for _ in range(CANDIDATES):
            await caller.expect("ice", wait)
            await desk.expect("ice", wait)
        await caller.send("hangup")
        await desk.expect("hangup", wait)
    finally:
        for peer in (caller, desk):
            if peer is not None:
                await peer.close()


async def _guarded(recorder, call) -> None:
    try:
        await call
        if recorder.open:
            recorder.calls += 1
    except BenchError as error:
        if recorder.open:
            recorder.errors[error.kind] += 1
        # A failing pair must not spin; a refused one waits as the pages do
        # (`try_later`'s hint, plus up to half as much again).
        hint = error.retry_after
        await asyncio.sleep(0.5 if hint is None else hint * random.uniform(1, 1.5))


async def closed_loop(base, consultants, recorder, *, ramp, **call_options):
    """Each pair calls back to back until cancelled."""

    async def pair(i: int, slug: str, session: str):
        await asyncio.sleep(ramp * i / len(consultants))
        while True:
            await _guarded(
                recorder, one_call(base, slug, session, recorder, **call_options)
            )

    await asyncio.gather(
        *(pair(i, slug, s) for i, (slug, s) in enumerate(consultants.items()))
    )


async def open_loop(base, consultants, recorder, *, rate, **call_options):
    """A call starts every 1/rate s, whatever the others do, until cancelled."""
    free: asyncio.Queue = asyncio.Queue()
    for item in consultants.items():
        free.put_nowait(item)

    async def arrival():
        if free.empty():
            if recorder.open:
                recorder.errors["generator:no_free_consultant"] += 1
            return
        slug, session = free.get_nowait()
        try:
            await _guarded(
                recorder, one_call(base, slug, session, recorder, **call_options)
            )
        finally:
            free.put_nowait((slug, session))

    async with asyncio.TaskGroup() as calls:
        while True:
            calls.create_task(arrival())
            await asyncio.sleep(1 / rate)


async def run(
    stack,
    consultants: dict[str, str],
    *,
    duration: float,
    warmup: float,
    rate: float | None,
    compression: bool,
    wait: float,
) -> dict:
    """One repetition; `consultants` maps slug to session cookie."""
    recorder = Recorder()
    server, redis = Usage(stack.server_pid), Usage(stack.redis_pid)
    options = {"compression": compression, "wait": wait}
    if rate:
        load = open_loop(stack.config.ws, consultants, recorder, rate=rate, **options)
    else:
        # Starts spread over the warm-up, so that the pairs do not move in step.
        ramp = warmup
        load = closed_loop(stack.config.ws, consultants, recorder, ramp=ramp, **options)
    task = asyncio.create_task(load)
    await asyncio.sleep(warmup)
    recorder.open = True
    server.start()
    redis.start()
    generator0 = sum(os.times()[:2])
    started = time.monotonic()
    await asyncio.sleep(duration)
    recorder.open = False
    elapsed = time.monotonic() - started
    server_cpu, redis_cpu = server.cpu(), redis.cpu()
    # Near 1.0 means the generator, not the server, set the pace.
    generator_share = (sum(os.times()[:2]) - generator0) / elapsed
    # Calls still in flight are dropped, not waited for: under overload one
    # call can take longer than the whole window.
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    calls = recorder.calls
    return {
        "calls": calls,
        "calls_per_s": calls / elapsed,
        "server_cpu_ms_per_call": 1000 * server_cpu / calls if calls else None,
        "server_cpu_share": server_cpu / elapsed,
        "generator_cpu_share": generator_share,
        "redis_cpu_ms_per_call": 1000 * redis_cpu / calls if calls else None,
        "peak_rss_mb": memory_kb(stack.server_pid)["peak"] / 1024,
        "deflate": sorted(recorder.deflate),
        "errors": dict(recorder.errors),
    } | {
        f"{kind}_ms": latency_summary(samples)
        for kind, samples in recorder.latency.items()
    }
