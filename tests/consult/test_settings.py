"""Settings as the environment names them, read back from a real process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal = cursor.fetchone()[0]
    cursor.execute("PRAGMA busy_timeout")
    busy = cursor.fetchone()[0]
print(json.dumps({"journal": journal, "busy_ms": busy,
    "mode": connection.settings_dict["OPTIONS"].get("transaction_mode")}))
"""


def sqlite_settings(**environment) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "DATABASE_", "SQLITE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", DJANGO_DEBUG="1", **environment
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("named_by", ["SQLITE_PATH", "DATABASE_URL"])
def test_sqlite_gets_wal_a_busy_timeout_and_immediate_writes_however_named(
    tmp_path, named_by
):
    path = tmp_path / "consult.sqlite3"
    value = str(path) if named_by == "SQLITE_PATH" else f"sqlite:///{path}"
    assert sqlite_settings(**{named_by: value}) == {
        "journal": "wal",
        "busy_ms": 20_000,
        "mode": "IMMEDIATE",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [("CONSULT_ADMISSION_LAG_MS", "-1"), ("CONSULT_ADMISSION_RETRY_SECONDS", "0")],
)
def test_an_admission_setting_that_would_refuse_for_good_stops_the_start(
    tmp_path, name, value
):
    # A negative bound turns every new join away for good; a retry hint under
    # a second sends clients straight back. Neither may start a server.
    with pytest.raises(subprocess.CalledProcessError) as failed:
        sqlite_settings(SQLITE_PATH=str(tmp_path / "consult.sqlite3"), **{name: value})
    assert f"{name} must be" in failed.value.stderr
