"""The `calls` scenario: whole consultations, from desk connect to both closes.

Closed loop: N caller/consultant pairs each run calls back to back. Open
loop (`rate`): a new call starts every 1/rate seconds with a free consultant.
Only what happens inside the measuring window (after the warm-up) counts.
A call opens its desk socket and closes it at the end, unless `keep_desk`
(closed loop): then each pair's desk stays open from call to call.

With several server processes, pair i's desk connects to process i mod P
and its caller to process (i div 2) mod P: with two, half the calls have
both parties on one process and half are relayed across, through Redis.
"""

import asyncio
import os
import random
import time
from collections import Counter
from contextlib import suppress

from . import pg
from .client import BenchError, Peer, candidate, now_us, sdp, sent_at
from .measure import Usage, latency_summary, memory_kb

POLL_BACKENDS = 0.5  # s between readings of the PostgreSQL backends' CPU

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
        self.calls_across = 0  # desk and caller on different server processes
        self.deflate: set[bool] = set()

    def on_frame(self, frame: dict, received_us: int) -> None:
        kind = LATENCY_OF.get(frame["type"])
        if kind and self.open and (stamp := sent_at(frame)) is not None:
            self.latency[kind].append(received_us - stamp)


def route(i: int, bases: list[str]) -> tuple[str, str]:
    """The servers of pair i's desk and caller (see the module's docstring)."""
    return bases[i % len(bases)], bases[(i // 2) % len(bases)]


async def open_desk(base, session, recorder, *, compression, wait) -> Peer:
    """A consultant's desk socket, past its first `hello` and `queue`."""
    desk = await Peer.open(
        base,
        "/ws/desk/",
        session=session,
        compression=compression,
        on_frame=recorder.on_frame,
        wait=wait,
    )
    try:
        recorder.deflate.add(desk.deflate)
        await desk.expect("hello", wait)
        await desk.expect("queue", wait)
    except BaseException:
        await desk.close()
        raise
    return desk


async def one_call(
    bases, slug, session, recorder, *, compression, wait, desk: Peer | None = None
) -> bool:
    """One whole call, counted as completed if the window is open; True.

    `bases` are the desk's and the caller's server URLs. The call opens its
    own desk socket and closes it at the end, unless given an open `desk`
    (which it leaves open).
    """
    desk_base, caller_base = bases
    own_desk = desk is None
    caller = None
    try:
        if own_desk:
            desk = await open_desk(
                desk_base, session, recorder, compression=compression, wait=wait
            )
        else:
            desk.backlog.clear()  # nothing of the last call is awaited now
        started = now_us()
        caller = await Peer.open(
            caller_base,
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
        for peer in (caller, desk if own_desk else None):
            if peer is not None:
                await peer.close()
    if recorder.open:
        recorder.calls += 1
        recorder.calls_across += desk_base != caller_base
    return True


async def _guarded(recorder, work):
    """What `work` returns, or None once a BenchError is counted (in the window)."""
    try:
        return await work
    except BenchError as error:
        if recorder.open:
            recorder.errors[error.kind] += 1
        # A failing pair must not spin; a refused one waits as the pages do
        # (`try_later`'s hint, plus up to half as much again).
        hint = error.retry_after
        await asyncio.sleep(0.5 if hint is None else hint * random.uniform(1, 1.5))
        return None


async def closed_loop(bases, consultants, recorder, *, ramp, keep_desk, **options):
    """Each pair calls back to back until cancelled.

    With `keep_desk` the pair's desk socket stays open from call to call (it
    is opened again after a failure), as a consultant's does all day.
    """

    async def pair(i: int, slug: str, session: str):
        await asyncio.sleep(ramp * i / len(consultants))
        desk_base, caller_base = route(i, bases)
        desk = None
        try:
            while True:
                if keep_desk and desk is None:
                    desk = await _guarded(
                        recorder, open_desk(desk_base, session, recorder, **options)
                    )
                    if desk is None:
                        continue
                call = one_call(
                    (desk_base, caller_base),
                    slug,
                    session,
                    recorder,
                    desk=desk,
                    **options,
                )
                if not await _guarded(recorder, call) and desk is not None:
                    await desk.close()
                    desk = None
        finally:
            if desk is not None:
                await desk.close()

    await asyncio.gather(
        *(pair(i, slug, s) for i, (slug, s) in enumerate(consultants.items()))
    )


async def open_loop(bases, consultants, recorder, *, rate, **call_options):
    """A call starts every 1/rate s, whatever the others do, until cancelled."""
    free: asyncio.Queue = asyncio.Queue()
    for i, (slug, session) in enumerate(consultants.items()):
        free.put_nowait((slug, session, route(i, bases)))

    async def arrival():
        if free.empty():
            if recorder.open:
                recorder.errors["generator:no_free_consultant"] += 1
            return
        slug, session, pair_bases = item = free.get_nowait()
        try:
            await _guarded(
                recorder, one_call(pair_bases, slug, session, recorder, **call_options)
            )
        finally:
            free.put_nowait(item)

    async with asyncio.TaskGroup() as calls:
        while True:
            calls.create_task(arrival())
            await asyncio.sleep(1 / rate)


async def _poll(backends, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        backends.poll()


def _per_call(seconds: float, calls: int) -> float | None:
    return 1000 * seconds / calls if calls else None


async def run(
    stack,
    consultants: dict[str, str],
    *,
    duration: float,
    warmup: float,
    rate: float | None,
    compression: bool,
    wait: float,
    keep_desk: bool = False,
) -> dict:
    """One repetition; `consultants` maps slug to session cookie.

    Besides the calls and latencies: the servers' CPU (in all, and each
    process's), Redis's, the PostgreSQL backends' of the bench database, the
    generator's own, all per completed call; and the statements PostgreSQL
    executed for the bench database per completed call (`sql_per_call`, by
    kind in `sql_by_kind`), when the stack logs them.
    """
    recorder = Recorder()
    servers = [Usage(pid) for pid in stack.server_pids]
    redis = Usage(stack.redis_pid)
    options = {"compression": compression, "wait": wait}
    bases = stack.config.bases
    if rate:
        load = open_loop(bases, consultants, recorder, rate=rate, **options)
    else:
        # Starts spread over the warm-up, so that the pairs do not move in step.
        ramp = warmup
        load = closed_loop(
            bases, consultants, recorder, ramp=ramp, keep_desk=keep_desk, **options
        )
    task = asyncio.create_task(load)
    await asyncio.sleep(warmup)
    recorder.open = True
    for usage in (*servers, redis):
        usage.start()
    stack.backends.start()
    if stack.statements:
        stack.statements.start()
    poller = asyncio.create_task(_poll(stack.backends, POLL_BACKENDS))
    generator0 = sum(os.times()[:2])
    started = time.monotonic()
    await asyncio.sleep(duration)
    recorder.open = False
    elapsed = time.monotonic() - started
    generator_cpu = sum(os.times()[:2]) - generator0
    server_cpus = [usage.cpu() for usage in servers]
    redis_cpu, pg_cpu = redis.cpu(), stack.backends.cpu()
    statements = stack.statements.count() if stack.statements else None
    poller.cancel()
    # Calls still in flight are dropped, not waited for: under overload one
    # call can take longer than the whole window.
    task.cancel()
    for running in (poller, task):
        with suppress(asyncio.CancelledError):
            await running
    calls = recorder.calls
    server_cpu = sum(server_cpus)
    result = {
        "calls": calls,
        "calls_per_s": calls / elapsed,
        "calls_across_processes": recorder.calls_across,
        "server_cpu_ms_per_call": _per_call(server_cpu, calls),
        "server_cpu_share": server_cpu / elapsed / len(servers),
        # Near 1.0 means the generator, not the server, set the pace.
        "generator_cpu_share": generator_cpu / elapsed,
        "generator_cpu_ms_per_call": _per_call(generator_cpu, calls),
        "redis_cpu_ms_per_call": _per_call(redis_cpu, calls),
        "pg_cpu_ms_per_call": _per_call(pg_cpu, calls),
        "pg_backends": stack.backends.seen,
        "sql_per_call": None,
        "peak_rss_mb": max(memory_kb(pid)["peak"] for pid in stack.server_pids) / 1024,
        "deflate": sorted(recorder.deflate),
        "errors": dict(recorder.errors),
    }
    if statements is not None and calls:
        by_kind = Counter()
        for statement, n in statements.items():
            by_kind[pg.kind(statement)] += n
        result["sql_per_call"] = statements.total() / calls
        result["sql_by_kind"] = {k: n / calls for k, n in by_kind.most_common()}
        result["sql_top"] = {s: n / calls for s, n in statements.most_common(30)}
    if len(servers) > 1:
        result["servers"] = [
            {
                "port": port,
                "cpu_ms_per_call": _per_call(cpu, calls),
                "cpu_share": cpu / elapsed,
                "peak_rss_mb": memory_kb(pid)["peak"] / 1024,
            }
            for port, pid, cpu in zip(
                stack.config.ports, stack.server_pids, server_cpus, strict=True
            )
        ]
    return result | {
        f"{kind}_ms": latency_summary(samples)
        for kind, samples in recorder.latency.items()
    }
