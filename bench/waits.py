"""How often a caller's real wait falls in the range the model gave at joining.

Replays a queue in simulated time (no server, no database): callers arrive at
random, one consultant takes them in order, each call lasts a time drawn from
a log-normal distribution (the usual shape of service times). At each arrival
the caller gets `consult.waits.wait_range` from the consultant's last 20 calls
and the call in progress, exactly as the live queue computes it; the caller's
real wait is then compared with it. A 25th-75th percentile range should hold
about half of the real waits, with the misses split evenly above and below.

    .venv/bin/python -m bench.waits [--callers 20000] [--load 0.9] [--seed 1]
"""

import argparse
import math
import random
import statistics
from collections import deque

from consult.waits import wait_range

HISTORY = 20  # as selectors.HISTORY_FOR_ESTIMATE


def replay(*, callers: int, load: float, median: float, sigma: float, seed: int):
    rng = random.Random(seed)
    mean_call = median * math.exp(sigma**2 / 2)
    arrival_rate = load / mean_call
    history: deque[float] = deque(maxlen=HISTORY)
    # (start, end) of calls taken, in order; a caller's call starts when the
    # consultant is free and everyone ahead is done.
    now = 0.0
    free_at = 0.0
    calls: deque[tuple[float, float]] = deque()  # calls in progress or queued
    results = []
    for _ in range(callers):
        now += rng.expovariate(arrival_rate)
        while calls and calls[0][1] <= now:
            start, end = calls.popleft()
            history.append(end - start)
        in_progress = calls and calls[0][0] <= now
        position = len(calls) - (1 if in_progress else 0) + 1
        elapsed = now - calls[0][0] if in_progress else None
        span = wait_range(
            handling_seconds=list(history), position=position, elapsed_seconds=elapsed
        )
        length = rng.lognormvariate(math.log(median), sigma)
        start = max(now, free_at)
        free_at = start + length
        calls.append((start, free_at))
        results.append((span, start - now, position))
    return results


def report(results) -> None:
    known = [(s, w, p) for s, w, p in results if s is not None]
    queued = [(s, w, p) for s, w, p in known if s.high_seconds > 0]
    print(f"callers: {len(results)}, with a range: {len(known)}")
    for label, rows in (("all with a range", known), ("behind someone", queued)):
        inside = sum(s.low_seconds <= w <= s.high_seconds for s, w, _ in rows)
        below = sum(w < s.low_seconds for s, w, _ in rows)
        above = sum(w > s.high_seconds for s, w, _ in rows)
        n = len(rows) or 1
        print(
            f"{label}: {len(rows)} callers, in range {inside / n:.1%}, "
            f"shorter {below / n:.1%}, longer {above / n:.1%}"
        )
    for place in (1, 2, 3, 5):
        rows = [(s, w) for s, w, p in queued if p == place]
        if not rows:
            continue
        inside = sum(s.low_seconds <= w <= s.high_seconds for s, w in rows)
        width = statistics.median(s.high_seconds - s.low_seconds for s, _ in rows)
        print(
            f"  place {place}: {len(rows)} callers, in range {inside / len(rows):.1%}, "
            f"median width {width / 60:.1f} min"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=20000)
    parser.add_argument("--load", type=float, default=0.9)
    parser.add_argument("--median", type=float, default=300, help="seconds")
    parser.add_argument("--sigma", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report(
        replay(
            callers=args.callers,
            load=args.load,
            median=args.median,
            sigma=args.sigma,
            seed=args.seed,
        )
    )


if __name__ == "__main__":
    main()
