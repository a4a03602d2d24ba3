"""What a run measures of a process (CPU, memory) and how samples are summed up."""

import math
import os
import statistics
from collections import Counter

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: the fields start after its ")".
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_kb(pid: int) -> dict:
    """Resident set size now and at its peak, in kB (/proc/<pid>/status)."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return {"rss": found["VmRSS"], "peak": found["VmHWM"]}


def percentile(samples: list[float], p: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    # Nearest rank: the smallest sample with at least p% of samples at or below.
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def latency_summary(samples_us: list[int]) -> dict:
    """p50/p95/p99 in milliseconds."""
    return {
        f"p{p}": (None if (v := percentile(samples_us, p)) is None else v / 1000)
        for p in (50, 95, 99)
    } | {"n": len(samples_us)}


def median_of(runs: list[dict]) -> dict:
    """Key by key median of several runs' flat results; counters are summed."""
    merged = {}
    for key in runs[0]:
        values = [run[key] for run in runs if key in run]
        if all(isinstance(v, dict) for v in values) and key == "errors":
            merged[key] = dict(sum((Counter(v) for v in values), Counter()))
        elif all(isinstance(v, dict) for v in values):
            merged[key] = median_of(values)
        elif _rows_alike(values):
            # e.g. `servers`: each server process's figures, in the same order
            merged[key] = [median_of(list(rows)) for rows in zip(*values, strict=True)]
        elif (numbers := [v for v in values if _is_number(v)]) and all(
            v is None or _is_number(v) for v in values
        ):
            # A run without this value (no call completed) has no say in it.
            merged[key] = statistics.median(numbers)
        else:
            merged[key] = values[0] if len(set(map(repr, values))) == 1 else values
    return merged


def _rows_alike(values: list) -> bool:
    """Lists of dicts, all of one length."""
    return (
        all(isinstance(v, list) and all(isinstance(r, dict) for r in v) for v in values)
        and len({len(v) for v in values}) == 1
        and bool(values[0])
    )


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Usage:
    """CPU spent and memory held by a process between `start()` and `stop()`."""

    def __init__(self, pid: int):
        self.pid = pid
        self.cpu0 = 0.0

    def start(self) -> None:
        self.cpu0 = cpu_seconds(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid) - self.cpu0
