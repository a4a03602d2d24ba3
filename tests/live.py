"""Real servers on loopback: free ports, `daphne` serving `config.asgi:application`,
and a private `redis-server`, each a child process with its output in a log file.

Shared by the multi-process signaling tests, the browser tests and the benchmark
(`bench/`, run from the repository root). Standard library only: the benchmark
imports it without setting Django up.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
APP = "config.asgi:application"
STARTUP_SECONDS = 30


def free_port(candidates: Sequence[int] = ()) -> int:
    """A port nobody listens on: the first free one of `candidates`, else any."""
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_env(
    *,
    redis_url: str,
    secret_key: str,
    database_url: str | None = None,
    sqlite_path: Path | None = None,
    settings_module: str = "config.settings",
    admission: bool = False,
    **settings: str,
) -> dict[str, str]:
    """The environment of a server process with production settings (DEBUG off).

    The database is PostgreSQL (or any) at `database_url`, or the SQLite file
    `sqlite_path`; `settings` adds or overrides variables (`LOG_LEVEL="INFO"`).
    None of this process's own `DJANGO_*`, `SQLITE*` or `DATABASE_URL` leaks in.
    Without `admission` the server never answers `try_later`: a test machine
    loaded by browsers lags at any moment (tests of admission set their own
    `CONSULT_ADMISSION_LAG_MS`; the bench runs it as deployed).
    """
    if (database_url is None) == (sqlite_path is None):
        raise TypeError("give exactly one of database_url and sqlite_path")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SQLITE")) and key != "DATABASE_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DJANGO_SECRET_KEY=secret_key,
        DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
        DJANGO_SECURE_SSL_REDIRECT="0",
        REDIS_URL=redis_url,
        LOG_LEVEL="WARNING",
    )
    if not admission:
        env["CONSULT_ADMISSION_LAG_MS"] = "0"
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    else:
        env["SQLITE_PATH"] = str(sqlite_path)
    env.update(settings)
    return env


class Process:
    """A child process in a session of its own, its output appended to `log`.

    `wrapper` goes before every command it runs, e.g. `("taskset", "-c", "0")`.
    """

    def __init__(self, name: str, log_dir: Path, *, wrapper: Sequence[str] = ()):
        self.name = name
        self.log = Path(log_dir) / f"{name}.log"
        self.wrapper = list(wrapper)
        self.process: subprocess.Popen | None = None

    def spawn(self, args: list[str], env: dict | None = None) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*self.wrapper, *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def wait_until(
        self, ready: Callable[[], bool], timeout: float = STARTUP_SECONDS
    ) -> None:
        """Return once `ready()` holds (an OSError counts as not yet); raise with
        the tail of the log if the process exits first or `timeout` runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not come up in {timeout:g} s:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """`kill -9` of its session: no clean shutdown, exactly as a crash."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, and `kill()` if it has not exited within `timeout`."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def daphne(port: int, *, app: str = APP, args: Sequence[str] = ()) -> list[str]:
    """The command that serves `app` with daphne on `HOST:port`, as deployed
    (`signaling.serve`: daphne with its pings spread)."""
    serve = [sys.executable, "-m", "signaling.serve"]
    return [*serve, "-b", HOST, "-p", str(port), *args, app]


class Server(Process):
    """An ASGI server process (daphne unless `command` says otherwise) on `port`,
    a free one by default."""

    def __init__(
        self,
        name: str,
        log_dir: Path,
        env: dict[str, str],
        *,
        port: int | None = None,
        command: list[str] | None = None,
        wrapper: Sequence[str] = (),
    ):
        super().__init__(name, log_dir, wrapper=wrapper)
        self.env = env
        self.port = port or free_port()
        self.command = command or daphne(self.port)
        self.origin = f"http://{HOST}:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        """Start it; with `wait`, return once it answers (see `wait_ready`)."""
        self.spawn(self.command, self.env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        # A request also starts the process's runtime (heartbeat and sweeper).
        self.wait_until(lambda: self.get("/accounts/login/")[0] == 200, timeout)

    def get(self, path: str, headers: dict | None = None) -> tuple:
        """GET `path`: (status, headers, body as text)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read().decode()
        finally:
            conn.close()


class Redis(Process):
    """A private `redis-server` without persistence, restartable on its port."""

    def __init__(
        self,
        log_dir: Path,
        port: int | None = None,
        *,
        name: str = "redis",
        args: Sequence[str] = (),
        wrapper: Sequence[str] = (),
    ):
        self.port = port or free_port()
        super().__init__(f"{name}-{self.port}", log_dir, wrapper=wrapper)
        self.args = list(args)
        self.url = f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        self.spawn(
            [
                "redis-server",
                *("--bind", HOST, "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.log.parent)),
                *self.args,
            ]
        )
        self.wait_until(lambda: self.query(b"PING") == b"+PONG")

    def flushall(self) -> None:
        if (reply := self.query(b"FLUSHALL")) != b"+OK":
            raise RuntimeError(f"{self.name}: FLUSHALL answered {reply!r}")

    def query(self, name: bytes) -> bytes:
        """Send one argument-less command; the first line of the reply."""
        with socket.create_connection((HOST, self.port), timeout=5) as conn:
            conn.sendall(name + b"\r\n")
            return conn.recv(64).split(b"\r\n", 1)[0]


@contextmanager
def started_redis(log_dir: Path, ports: range) -> Iterator[Redis]:
    """A started `Redis` of a test's own, on a free port of `ports` (a range no
    other suite uses), killed when the test is done."""
    server = Redis(log_dir, free_port(ports))
    server.start()
    try:
        yield server
    finally:
        server.kill()
