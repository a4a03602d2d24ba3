"""`python -m bench SCENARIO [options]`: run one scenario several times, print medians.

Each scenario gets a fresh stack (redis-server, PostgreSQL database, server);
the server is restarted for every repetition. Results go to stdout and, as
JSON, to bench/results/.
"""

import argparse
import asyncio
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import calls, fanout, idle, overload, profile
from .client import login
from .measure import cpu_seconds, median_of
from .stack import PASSWORD, Config, Stack, pin_generator, versions

RESULTS = Path(__file__).resolve().parent / "results"
STARTED = time.strftime("%H%M%S")
DEPLOYED_DAPHNE_ARGS = "--ping-interval 60 --ping-timeout 30"  # deploy/Dockerfile
# A bench desk kept open takes a call a second or more, 10 frames each: over
# the frame rate a person's desk is held to (close 4429, docs/protocol.md).
KEPT_DESK_LIMITS = {"CONSULT_RATE_PER_SECOND": "1000", "CONSULT_RATE_BURST": "3000"}


def server_args(args) -> str:
    if args.server_args is not None:
        return args.server_args
    return DEPLOYED_DAPHNE_ARGS if args.server == "daphne" else ""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("scenario", choices=["calls", "idle", "fanout", "overload"])
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    parser.add_argument("--layer", choices=["core", "pubsub"], default="core")
    parser.add_argument(
        "--no-deflate",
        dest="deflate",
        action="store_false",
        help="neither offer (client) nor allow (uvicorn) permessage-deflate",
    )
    parser.add_argument(
        "--no-db-pool",
        dest="db_pool",
        action="store_false",
        help="a new PostgreSQL connection per database call (DATABASE_POOL=0)",
    )
    parser.add_argument(
        "--app", default=Config.app, help="ASGI app, e.g. bench.tracemem:application"
    )
    parser.add_argument(
        "--server-args",
        help="default for daphne: the ping settings of deploy/Dockerfile",
    )
    parser.add_argument(
        "--processes",
        type=int,
        choices=[1, 2],
        default=1,
        help="calls: server processes, one per core (ports --port and --port+1)",
    )
    parser.add_argument(
        "--no-sql-log",
        dest="sql_log",
        action="store_false",
        help="calls: do not log the bench database's statements (no SQL count; "
        "PostgreSQL's CPU without the logging)",
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--redis-port", type=int, default=6400)
    parser.add_argument("--database", default="consult_bench")
    parser.add_argument(
        "--env", action="append", default=[], help="server setting KEY=VALUE"
    )
    parser.add_argument("--label", default="", help="name of the results file")
    parser.add_argument("--out", type=Path, help="results file (default: by label)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the server in the 1st rep"
    )
    # calls
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--rate", type=float, help="open loop: calls started per s")
    parser.add_argument(
        "--keep-desk",
        action="store_true",
        help="closed loop: each pair's desk socket stays open from call to call",
    )
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--timeout", type=float, default=30, help="per step of a call")
    parser.add_argument(
        "--form-logins",
        type=int,
        default=50,
        help="consultants logged in through the form (each costs a password hash); "
        "the others get sessions minted by the seed",
    )
    # idle
    parser.add_argument("--levels", default="2000,5000,10000")
    parser.add_argument("--hold", type=float, default=60, help="idle check, 1st rep")
    # fanout
    parser.add_argument("--lobby", default="2500,5000,10000")
    parser.add_argument("--queued", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=5)
    # overload
    parser.add_argument("--established", type=int, default=20)
    parser.add_argument(
        "--capacity",
        type=float,
        default=20,
        help="calls/s the server completes flat out (calls scenario); offered: 2x",
    )
    parser.add_argument("--relay-interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    if args.processes > 1 and args.scenario != "calls":
        parser.error("--processes applies to the calls scenario only")
    if args.keep_desk and args.rate:
        parser.error("--keep-desk applies to the closed loop only")
    return args


def form_logins(config: Config, usernames: list[str], server_pid: int) -> tuple:
    """Log these consultants in through /accounts/login/; (sessions, stats)."""
    cpu0, started = cpu_seconds(server_pid), time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        sessions = list(
            pool.map(lambda u: login("127.0.0.1", config.port, u, PASSWORD), usernames)
        )
    elapsed, cpu = time.monotonic() - started, cpu_seconds(server_pid) - cpu0
    stats = {
        "logins": len(usernames),
        "logins_per_s": len(usernames) / elapsed if usernames else None,
        "server_cpu_ms_per_login": 1000 * cpu / len(usernames) if usernames else None,
    }
    return dict(zip(usernames, sessions, strict=True)), stats


def repetitions(stack: Stack, args, work) -> list[dict]:
    """Each repetition's result: the server restarted on a clean slate, then
    `work(rep)`, the repetition's coroutine, run (`measured`)."""
    runs = []
    for rep in range(args.reps):
        stack.restart_server()
        result = measured(stack, args, rep, work(rep))
        result["load_avg_1m"] = os.getloadavg()[0]  # others share this machine
        print(f"  rep {rep + 1}: {json.dumps(result)}", flush=True)
        runs.append(result)
    return runs


def run_calls(stack: Stack, args) -> tuple[list[dict], dict]:
    count = max(args.pairs, 50) if args.rate else args.pairs
    by_form = min(count, args.form_logins)
    sessions = stack.seed(count, sessions_from=by_form)
    login_stats = {}

    def work(rep: int):
        nonlocal login_stats
        if rep == 0:
            names = [f"b{i}" for i in range(by_form)]
            formed, login_stats = form_logins(stack.config, names, stack.server_pid)
            sessions.update(formed)
        return calls.run(
            stack,
            sessions,
            duration=args.duration,
            warmup=args.warmup,
            rate=args.rate,
            compression=args.deflate,
            wait=args.timeout,
            keep_desk=args.keep_desk,
        )

    return repetitions(stack, args, work), login_stats


def run_idle(stack: Stack, args) -> tuple[list[dict], dict]:
    levels = [int(n) for n in args.levels.split(",")]
    sessions = stack.seed(1, max_queue=max(levels) + 100, sessions_from=0)
    return repetitions(
        stack,
        args,
        lambda rep: idle.run(
            stack,
            sessions,
            levels=levels,
            hold=args.hold if rep == 0 else 0,
            compression=args.deflate,
        ),
    ), {}


def run_fanout(stack: Stack, args) -> tuple[list[dict], dict]:
    lobby = [int(n) for n in args.lobby.split(",")]
    sessions = stack.seed(1, max_queue=args.queued + 100, sessions_from=0)
    return repetitions(
        stack,
        args,
        lambda rep: fanout.run(
            stack,
            sessions,
            lobby=lobby,
            queued=args.queued,
            changes=args.changes,
            compression=args.deflate,
        ),
    ), {}


def run_overload(stack: Stack, args) -> tuple[list[dict], dict]:
    rate = args.rate or 2 * args.capacity
    # Desks for five seconds of arrivals: a call takes one or two when the
    # server keeps up; arrivals that find no free consultant are counted.
    arrivals = max(20, int(rate * 5))
    sessions = stack.seed(args.established + arrivals, sessions_from=0)
    return repetitions(
        stack,
        args,
        lambda rep: overload.run(
            stack,
            sessions,
            established=args.established,
            rate=rate,
            relay_interval=args.relay_interval,
            duration=args.duration,
            warmup=args.warmup,
            compression=args.deflate,
            wait=args.timeout,
        ),
    ), {}


def measured(stack: Stack, args, rep: int, work) -> dict:
    """Run one repetition's coroutine, under py-spy if asked (first rep only)."""
    if not (args.profile and rep == 0):
        return asyncio.run(work)
    path = RESULTS / f"{label_of(args)}.profile.txt"
    RESULTS.mkdir(exist_ok=True)
    spy = profile.record(stack.server_pid, path)
    try:
        return asyncio.run(work)
    finally:
        profile.stop(spy)
        print(profile.hot(path), flush=True)


def label_of(args) -> str:
    return args.label or f"{args.scenario}-{STARTED}"


SCENARIOS = {
    "calls": run_calls,
    "idle": run_idle,
    "fanout": run_fanout,
    "overload": run_overload,
}


def main(argv=None) -> dict:
    args = parse_args(argv)
    config = Config(
        server=args.server,
        layer=args.layer,
        compression=args.deflate,
        port=args.port,
        redis_port=args.redis_port,
        database=args.database,
        app=args.app,
        server_args=tuple(server_args(args).split()),
        db_pool=args.db_pool,
        env=(KEPT_DESK_LIMITS if args.keep_desk else {})
        | dict(item.split("=", 1) for item in args.env),
        processes=args.processes,
        sql_log=args.scenario == "calls" and args.sql_log,
    )
    pin_generator(config)
    print(f"== {args.scenario}: {config.describe()}", flush=True)
    with Stack(config) as stack:
        runs, extra = SCENARIOS[args.scenario](stack, args)
    report = {
        "scenario": args.scenario,
        "args": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
        },
        "config": config.describe(),
        "versions": versions(),
        "median": median_of(runs),
        "runs": runs,
    } | extra
    print(json.dumps({"median": report["median"]} | extra, indent=1))
    RESULTS.mkdir(exist_ok=True)
    out = args.out or RESULTS / f"{label_of(args)}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
