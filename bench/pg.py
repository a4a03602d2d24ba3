"""What PostgreSQL does for the bench database: statements executed, backends' CPU.

Statements are counted in the server's log, with `log_statement = 'all'` set
on the bench database alone (`ALTER DATABASE ... SET`, superuser): every
statement a backend of that database executes is one `LOG:  statement:` (or
`execute`) line carrying the database's name, BEGIN and COMMIT included.
`pg_stat_statements` would count the same more cheaply, but it must be in
`shared_preload_libraries`, which takes a restart of the server that everyone
on this machine shares. The cost of the logging itself lands in the backends'
CPU; `--no-sql-log` measures without it. Empty statements are counted too:
they are the pool's checks of the connections it hands out.

Backends are the postmaster's children whose process title names the
database (`postgres: 15/main: USER DATABASE HOST(PORT) STATE`, what
`pg_stat_activity.datname` says of them), read from /proc.
"""

import re
import subprocess
from collections import Counter
from pathlib import Path

from .measure import cpu_seconds


def psql(url: str, sql: str) -> str:
    done = subprocess.run(
        ["psql", url, "-Atqc", sql], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed: {done.stderr}")
    return done.stdout.strip()


def postmaster_pid(url: str) -> int:
    """The server's main process: the parent of its checkpointer (which, unlike
    the backend answering this query, outlives it)."""
    sql = "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'"
    with open(f"/proc/{psql(url, sql)}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def server_log(url: str, postmaster: int) -> Path:
    """The file the server logs to: the collector's current file, else its stderr."""
    current = psql(url, "SELECT coalesce(pg_current_logfile('stderr'), '')")
    if current:
        return Path(psql(url, "SHOW data_directory")) / current
    return Path(f"/proc/{postmaster}/fd/2").resolve()


class StatementLog:
    """Counts the statements the server logged for `database` since `start()`."""

    def __init__(self, server_url: str, database: str):
        if "%d" not in psql(server_url, "SHOW log_line_prefix"):
            raise RuntimeError("log_line_prefix does not name the database (%d)")
        self.path = server_log(server_url, postmaster_pid(server_url))
        # The prefix ends with "user@database "; the statement's first word
        # (SELECT, BEGIN, ...) says its kind.
        self.line = re.compile(
            # A message is one write to the log, so a statement's further
            # lines (each after a tab) follow its first at once.
            rf"@{re.escape(database)} LOG:  (?:statement|execute [^:]*): "
            r"(.*(?:\n\t.*)*)"
        )
        self.offset = 0

    @staticmethod
    def enable(server_url: str, database: str) -> None:
        """Log every statement of `database` (sessions opened from now on)."""
        psql(server_url, f"ALTER DATABASE \"{database}\" SET log_statement = 'all'")

    def start(self) -> None:
        self.offset = self.path.stat().st_size

    def count(self) -> Counter:
        """Statements logged since `start()`, by shape: literals and column
        lists elided, at most 100 characters (`kind()` gives the first word)."""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
        return Counter(shape(m.group(1)) for m in self.line.finditer(text))


EMPTY = "(empty)"
_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_COLUMNS = re.compile(r"SELECT .*? FROM", re.DOTALL)


def shape(statement: str) -> str:
    """A statement's shape: what is the same for every call that runs it."""
    statement = " ".join(_LITERALS.sub("?", statement).split())
    return _COLUMNS.sub("SELECT … FROM", statement, count=1)[:100] or EMPTY


def kind(statement: str) -> str:
    """The statement's first word, upper case: SELECT, BEGIN, ...

    An empty statement is the pool's check of a connection it hands out
    (psycopg_pool's `check_connection`, on with CONN_HEALTH_CHECKS): a round
    trip all the same.
    """
    words = statement.lstrip("(").split(None, 1)
    return words[0].upper() if words and statement != EMPTY else EMPTY


class Backends:
    """CPU of the PostgreSQL backends serving `database` between `start()` and now.

    Pooled connections persist; others come and go. `poll()` (call it often,
    e.g. every 0.5 s) keeps each backend's last reading, so a backend that
    exits loses only what it spent since the last poll, and one born after
    `start()` counts from zero.
    """

    def __init__(self, postmaster: int, database: str):
        self.postmaster = postmaster
        self.token = f" {database} "
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.postmaster}/task/{self.postmaster}/children")
        found = []
        for pid in map(int, children.read_text().split()):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:  # exited since the list was read
                continue
            if self.token in title.decode(errors="replace").replace("\0", " "):
                found.append(pid)
        return found

    def _read(self) -> dict[int, float]:
        readings = {}
        for pid in self.pids():
            try:
                readings[pid] = cpu_seconds(pid)
            except OSError:
                continue
        return readings

    def start(self) -> None:
        self.first = self._read()
        self.last = dict(self.first)

    def poll(self) -> None:
        for pid, cpu in self._read().items():
            self.first.setdefault(pid, 0.0)
            self.last[pid] = cpu

    def cpu(self) -> float:
        """Seconds of CPU spent by the database's backends since `start()`."""
        self.poll()
        return sum(self.last[pid] - self.first[pid] for pid in self.last)

    @property
    def seen(self) -> int:
        return len(self.last)
