"""The load generator completes real calls against a real daphne, without errors.

A two-pair `calls` run and a small `overload` run, of a few seconds each, on
their own redis-server, database and port (bench/stack.py), so that the
benchmark suite cannot rot unnoticed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.processes


def test_two_pairs_complete_calls_without_errors(tmp_path):
    out = tmp_path / "smoke.json"
    done = subprocess.run(
        [
            sys.executable,
            *"-m bench calls --pairs 2 --reps 1 --warmup 1 --duration 3".split(),
            *"--timeout 10 --port 8199 --redis-port 6409".split(),
            *["--database", "consult_bench_smoke", "--out", str(out)],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())["runs"][0]
    assert result["errors"] == {}, result
    assert result["calls"] > 0
    assert result["answer_ms"]["n"] > 0
    assert result["ice_ms"]["n"] > 0


def test_overload_measures_relays_of_kept_calls_while_callers_arrive(tmp_path):
    out = tmp_path / "overload.json"
    done = subprocess.run(
        [
            sys.executable,
            *"-m bench overload --established 2 --rate 2 --reps 1".split(),
            *"--warmup 1 --duration 3 --timeout 10 --port 8197".split(),
            *"--redis-port 6407 --database consult_bench_overload_smoke".split(),
            *["--out", str(out)],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())["runs"][0]
    assert result["relay_ms"]["n"] > 0, result
    assert result["relay_errors"] == {}, result
    # A busy machine may make the server turn arrivals away; nothing else.
    assert set(result["errors"]) <= {"error:try_later"}, result
