"""The `overload` scenario: calls already set up, while new ones come too fast.

K pairs are set up first and then keep relaying: each side sends a candidate
every `relay_interval` seconds, and the relay latency of those is what counts.
The other consultants open their desks before the load starts, as a working
day has them open. Then new callers arrive, open loop, at `rate` a second
(meant as twice what the process can complete): each opens a socket and joins
a free consultant, who accepts; the call runs as in `calls` and hangs up. With
admission control on, the joins the process cannot take get `try_later`
(counted in `errors` as `error:try_later`, and not retried: the offered load is
the arrivals). Run it with `--env CONSULT_ADMISSION_LAG_MS=0` to see the same
load without it.
"""

import asyncio
import os
import random
import time
from contextlib import suppress

from .calls import ANSWER_BYTES, OFFER_BYTES, Recorder, one_call, open_desk
from .client import BenchError, Peer, candidate, sdp, sent_at
from .measure import Usage, latency_summary, memory_kb


class Relays:
    """Latency of the established pairs' candidates, while the window is open."""

    def __init__(self):
        self.open = False
        self.latency: list[int] = []
        self.sent = self.received = 0
        self.errors: dict[str, int] = {}

    def on_frame(self, frame: dict, received_us: int) -> None:
        if frame["type"] != "ice" or not self.open:
            return
        self.received += 1
        self.latency.append(received_us - sent_at(frame))

    def failed(self, error: BenchError) -> None:
        self.errors[error.kind] = self.errors.get(error.kind, 0) + 1


async def patiently(setup, *args, **kwargs):
    """Run a step of the set-up before the overload; answered `try_later` (the
    set-up itself, desks opening back to back, lags the loop), wait the hint
    and try again, as the pages do, at most 10 times."""
    for _ in range(10):
        try:
            return await setup(*args, **kwargs)
        except BenchError as error:
            if error.retry_after is None:
                raise
            await asyncio.sleep(error.retry_after)
    raise BenchError("setup:try_later")


async def establish(base, slug, session, relays, *, compression, wait) -> tuple:
    """One call set up and connected, before the overload: (desk, caller).
    On a failure both sockets are closed, for `patiently` to try again."""
    options = {"compression": compression, "on_frame": relays.on_frame, "wait": wait}
    opened = []
    try:
        return await _establish(base, slug, session, options, opened, wait)
    except BenchError:
        for peer in opened:
            await peer.close()
        raise


async def _establish(base, slug, session, options, opened, wait) -> tuple:
    desk = await Peer.open(base, "/ws/desk/", session=session, **options)
    opened.append(desk)
    await desk.expect("queue", wait)
    caller = await Peer.open(base, "/ws/call/", **options)
    opened.append(caller)
    await caller.expect("hello", wait)
    offer = {"type": "offer", "sdp": sdp("offer", OFFER_BYTES)}
    await caller.send("join", consultant=slug, name="Established", offer=offer)
    await caller.expect("queued", wait)
    await desk.send("accept")
    await desk.expect("caller", wait)
    answer = {"type": "answer", "sdp": sdp("answer", ANSWER_BYTES)}
    await desk.send("answer", answer=answer)
    await caller.expect("accepted", wait)
    # As the browsers say once ICE connects: the call is not ended as failed.
    for peer in (caller, desk):
        await peer.send("media", state="connected")
    return desk, caller


async def arrivals(base, desks: dict, recorder, *, rate, compression, wait):
    """A caller arrives every 1/rate s for a free consultant, until cancelled.

    A refused join is counted and not retried. After any other failure the
    desk is opened again, so that no half-ended call is carried into the next.
    """
    free: asyncio.Queue = asyncio.Queue()
    for item in desks.items():
        free.put_nowait(item)
    options = {"compression": compression, "wait": wait}

    async def arrival():
        if free.empty():
            if recorder.open:
                recorder.errors["generator:no_free_consultant"] += 1
            return
        slug, (session, desk) = free.get_nowait()
        try:
            # The calls scenario's call at an open desk (it counts the call).
            await one_call((base, base), slug, session, recorder, desk=desk, **options)
        except BenchError as error:
            if recorder.open:
                recorder.errors[error.kind] += 1
            if "try_later" not in error.kind:
                await desk.close()
                with suppress(BenchError):
                    desk = await open_desk(base, session, recorder, **options)
        finally:
            free.put_nowait((slug, (session, desk)))

    async with asyncio.TaskGroup() as calls:
        while True:
            calls.create_task(arrival())
            await asyncio.sleep(1 / rate)


async def keep_relaying(peer: Peer, relays: Relays, interval: float) -> None:
    """Send a candidate every `interval` s (a random phase) until cancelled."""
    await asyncio.sleep(random.uniform(0, interval))
    index = 0
    while True:
        try:
            await peer.send("ice", candidate=candidate(index))
        except BenchError as error:
            relays.failed(error)
            return
        if relays.open:
            relays.sent += 1
        index += 1
        await asyncio.sleep(interval)


async def listen(peer: Peer, relays: Relays) -> None:
    try:
        await peer.listen()
    except BenchError as error:
        relays.failed(error)


async def run(
    stack,
    consultants: dict[str, str],
    *,
    established: int,
    rate: float,
    relay_interval: float,
    duration: float,
    warmup: float,
    compression: bool,
    wait: float,
) -> dict:
    """One repetition; the first `established` consultants hold the kept calls."""
    base = stack.config.ws
    kept = dict(list(consultants.items())[:established])
    arriving = dict(list(consultants.items())[established:])
    relays, recorder = Relays(), Recorder()
    options = {"compression": compression, "wait": wait}
    pairs = [
        await patiently(establish, base, slug, session, relays, **options)
        for slug, session in kept.items()
    ]
    desks = {
        slug: (session, await patiently(open_desk, base, session, recorder, **options))
        for slug, session in arriving.items()
    }
    peers = [peer for pair in pairs for peer in pair]
    background = [asyncio.create_task(listen(peer, relays)) for peer in peers]
    background += [
        asyncio.create_task(keep_relaying(peer, relays, relay_interval))
        for peer in peers
    ]
    background.append(
        asyncio.create_task(arrivals(base, desks, recorder, rate=rate, **options))
    )
    server = Usage(stack.server_pid)
    await asyncio.sleep(warmup)
    relays.open = recorder.open = True
    server.start()
    generator0 = sum(os.times()[:2])
    started = time.monotonic()
    await asyncio.sleep(duration)
    relays.open = recorder.open = False
    elapsed = time.monotonic() - started
    server_cpu = server.cpu()
    generator_share = (sum(os.times()[:2]) - generator0) / elapsed
    for task in background:
        task.cancel()
    for task in background:
        with suppress(asyncio.CancelledError):
            await task
    for peer in peers + [desk for _session, desk in desks.values()]:
        await peer.close()
    refused = sum(n for kind, n in recorder.errors.items() if "try_later" in kind)
    return {
        "established": established,
        "offered_per_s": rate,
        "calls_per_s": recorder.calls / elapsed,
        "try_later_per_s": refused / elapsed,
        "relay_ms": latency_summary(relays.latency),
        # Candidates sent in the window that had not arrived when it closed.
        "relays_unanswered": max(0, relays.sent - relays.received),
        "relay_errors": relays.errors,
        "errors": dict(recorder.errors),
        "setup_ms": latency_summary(recorder.latency["setup"]),
        "server_cpu_share": server_cpu / elapsed,
        "generator_cpu_share": generator_share,
        "peak_rss_mb": memory_kb(stack.server_pid)["peak"] / 1024,
    }
