"""The load generator completes real calls against a real daphne, without errors.

Two-pair `calls` runs of a few seconds on their own redis-server, database and
ports (bench/stack.py), one server process and two sharing Redis and
PostgreSQL, and a small `overload` run, so that the benchmark suite cannot
rot unnoticed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.processes


def run_bench(tmp_path, *arguments: str) -> dict:
    """The one repetition's result of `python -m bench ARGUMENTS`."""
    out = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", *arguments, "--reps", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(out.read_text())["runs"][0]


def run_calls(tmp_path, *options: str) -> dict:
    """A short two-pair calls run."""
    return run_bench(
        tmp_path,
        *"calls --pairs 2 --warmup 1 --duration 3".split(),
        *"--timeout 10 --redis-port 6409 --database consult_bench_smoke".split(),
        # Calls back to back are saturation by design: admission control
        # would answer some `try_later`, which these runs count as errors.
        *"--env CONSULT_ADMISSION_LAG_MS=0".split(),
        *options,
    )


def test_two_pairs_complete_calls_without_errors(tmp_path):
    result = run_calls(tmp_path, "--port", "8199")
    assert result["errors"] == {}, result
    assert result["calls"] > 0
    assert result["answer_ms"]["n"] > 0
    assert result["ice_ms"]["n"] > 0
    # PostgreSQL's side, measured by the running bench: a call is a few dozen
    # statements, and the backends of the bench database spent CPU on them.
    assert 10 < result["sql_per_call"] < 500, result
    assert result["sql_by_kind"]["COMMIT"] > 0
    assert result["pg_cpu_ms_per_call"] > 0
    assert result["pg_backends"] > 0
    assert result["generator_cpu_ms_per_call"] > 0


def test_two_processes_complete_calls_relayed_across_them(tmp_path):
    result = run_calls(tmp_path, "--port", "8197", "--processes", "2")
    assert result["errors"] == {}, result
    # Pair 1's desk is on the second process and its caller on the first.
    assert result["calls_across_processes"] > 0, result
    assert [s["port"] for s in result["servers"]] == [8197, 8198]
    assert all(s["cpu_ms_per_call"] > 0 for s in result["servers"]), result


def test_calls_at_desks_kept_open_complete_without_errors(tmp_path):
    result = run_calls(tmp_path, "--port", "8196", "--keep-desk")
    assert result["errors"] == {}, result
    assert result["calls"] > 0
    assert 5 < result["sql_per_call"] < 500, result


def test_overload_measures_relays_of_kept_calls_while_callers_arrive(tmp_path):
    result = run_bench(
        tmp_path,
        *"overload --established 2 --rate 2 --warmup 1 --duration 3".split(),
        *"--timeout 10 --port 8195 --redis-port 6407".split(),
        *"--database consult_bench_overload_smoke".split(),
    )
    assert result["relay_ms"]["n"] > 0, result
    assert result["relay_errors"] == {}, result
    # A busy machine may make the server turn arrivals away; nothing else.
    assert set(result["errors"]) <= {"error:try_later"}, result
