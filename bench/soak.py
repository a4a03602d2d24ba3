"""The soak: many health checks and socket open/close cycles, then memory.

`python -m bench.soak [--checks 100000] [--sockets 10000]` starts the bench
stack (a private redis-server, a fresh PostgreSQL database, daphne on
127.0.0.1) serving `bench.soak:application`: the application as deployed plus
`GET /soak/memory`, which runs a full garbage collection and reports the
process's memory and the channel layer's table of live channels. Memory is
read after a warm-up, after the health checks and after the socket cycles;
whatever a request or a socket makes must be released when it ends, so the
growth per request must be near zero (docs/benchmarks.md, "Soak").
"""

import argparse
import asyncio
import gc
import json
import os
import time
import tracemalloc
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
MEMORY_PATH = "/soak/memory"
HTTP_CONNECTIONS = 8
SOCKET_CONCURRENCY = 10
WARMUP_CHECKS, WARMUP_SOCKETS = 2000, 200
ROUNDS = 4


# --- the server side: the deployed app plus a memory report ----------------------


_last_snapshot: list = []


def _memory_report() -> dict:
    from channels.layers import get_channel_layer

    gc.collect()
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    layer = get_channel_layer()
    report = {"rss_kb": rss, "live_channels": len(getattr(layer, "_live", ()))}
    if tracemalloc.is_tracing():
        # What grew since the last report, by the line that allocated it.
        snapshot = tracemalloc.take_snapshot()
        if _last_snapshot:
            stats = snapshot.compare_to(_last_snapshot.pop(), "lineno")[:8]
            report["grew"] = [
                f"{s.size_diff / 1e3:.0f} kB {s.count_diff:+d} "
                f"{s.traceback[0].filename.split('site-packages/')[-1]}"
                f":{s.traceback[0].lineno}"
                for s in stats
            ]
        _last_snapshot.append(snapshot)
    return report


def _with_memory_report(app):
    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == MEMORY_PATH:
            body = json.dumps(_memory_report()).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body})
        return await app(scope, receive, send)

    return application


# --- the client side ---------------------------------------------------------------


async def _get(reader, writer, path: str) -> tuple[int, bytes]:
    """One GET on a kept-alive connection: (status, body)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def memory(port: int) -> dict:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        status, body = await _get(reader, writer, MEMORY_PATH)
    finally:
        writer.close()
    assert status == 200, status
    return json.loads(body)


async def health_checks(port: int, count: int) -> dict:
    """`count` GET /healthz over a few kept-alive connections; statuses counted."""
    statuses: dict[int, int] = {}
    left = iter(range(count))

    async def worker():
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for _ in left:
                status, _ = await _get(reader, writer, "/healthz")
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(HTTP_CONNECTIONS)))
    return {"statuses": statuses, "per_s": count / (time.monotonic() - started)}


async def socket_cycles(port: int, count: int) -> dict:
    """`count` caller sockets opened, greeted (`hello`) and closed."""
    from websockets.asyncio.client import connect

    from .client import next_address

    origin = f"http://{HOST}:{port}"
    greeted = 0
    left = iter(range(count))

    async def worker():
        nonlocal greeted
        for _ in left:
            async with connect(
                f"ws://{HOST}:{port}/ws/call/",
                origin=origin,
                # A socket's server side outlives the client's close a little:
                # one address would meet the per-address cap (the bench server
                # trusts X-Forwarded-For from 127.0.0.1, as behind the proxy).
                additional_headers={"X-Forwarded-For": next_address()},
                proxy=None,
                ping_interval=None,
                close_timeout=5,
                open_timeout=30,
            ) as ws:
                greeted += json.loads(await ws.recv())["type"] == "hello"

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(SOCKET_CONCURRENCY)))
    return {"greeted": greeted, "per_s": count / (time.monotonic() - started)}


def growth(before: dict, after: dict, count: int) -> dict:
    return {
        "rss_kb": after["rss_kb"] - before["rss_kb"],
        "bytes_each": round(1024 * (after["rss_kb"] - before["rss_kb"]) / count, 1),
        "live_channels": after["live_channels"] - before["live_channels"],
    }


async def phase(name: str, run, port: int, count: int) -> dict:
    """`run` in ROUNDS rounds, memory after each; growth over the later rounds
    (the first one lifts the allocator to its working size)."""
    readings, rates, outcomes = [await memory(port)], [], []
    for round_ in range(ROUNDS):
        done = await run(port, count // ROUNDS)
        await asyncio.sleep(2)  # the last closes reach the server
        readings.append(await memory(port))
        rates.append(done.pop("per_s"))
        outcomes.append(done)
        print(f"  {name} {round_ + 1}/{ROUNDS}: {readings[-1]} {done}", flush=True)
    later = count // ROUNDS * (ROUNDS - 1)
    return {
        "count": count,
        "per_s": sum(rates) / len(rates),
        "outcomes": outcomes,
        "rss_kb": [r["rss_kb"] for r in readings],
        "live_channels": [r["live_channels"] for r in readings],
        "whole": growth(readings[0], readings[-1], count),
        "after_first_round": growth(readings[1], readings[-1], later),
    }


async def soak(port: int, checks: int, sockets: int) -> dict:
    await health_checks(port, WARMUP_CHECKS)
    await socket_cycles(port, WARMUP_SOCKETS)
    return {
        "health_checks": await phase("health checks", health_checks, port, checks),
        "socket_cycles": await phase("socket cycles", socket_cycles, port, sockets),
    }


def main(argv=None) -> None:
    from .stack import Config, Stack, pin_generator, versions

    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--redis-port", type=int, default=6400)
    parser.add_argument("--database", default="consult_bench")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="say which lines grew (slower)"
    )
    args = parser.parse_args(argv)
    config = Config(
        port=args.port,
        redis_port=args.redis_port,
        database=args.database,
        app="bench.soak:application",
        server_args=("--ping-interval", "60", "--ping-timeout", "30"),
        env={"SOAK_TRACEMALLOC": "1"} if args.tracemalloc else {},
    )
    pin_generator(config)
    with Stack(config) as stack:
        stack.seed(1)
        stack.start_server()
        result = asyncio.run(soak(args.port, args.checks, args.sockets))
    result["versions"] = versions()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
else:
    if os.environ.get("SOAK_TRACEMALLOC"):
        tracemalloc.start()
    from config.asgi import application as deployed

    application = _with_memory_report(deployed)
