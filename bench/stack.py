"""The server stack a benchmark runs against, started the way we deploy.

A private redis-server, a fresh PostgreSQL database, and one server process
(daphne or uvicorn) with the Redis channel layer, pinned with `taskset` to the
server core while this generator runs on the other one. With `processes = 2`
there is a server on each core (ports `port` and `port + 1`), sharing Redis
and the database, and neither Redis nor the generator has a core of its own.
"""

import gc
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests import live

from . import pg

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv" / "bin"
# The logs: consult-bench-<port>.log (the server), consult-bench-redis-<port>.log.
LOGS = Path("/tmp")  # noqa: S108
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
PASSWORD = "bench-password"  # noqa: S105 (a throwaway user of a throwaway db)
# Consultants stay (with their sessions); queues, calls and presence go.
# CASCADE: what hangs off a consultation (its quality, feedback, recordings)
# goes with it, whatever features add such tables.
RESET_SQL = (
    "TRUNCATE consult_consultation, consult_ticket, consult_desksocket, "
    "consult_serverprocess CASCADE; UPDATE consult_consultant SET "
    "presence = 'offline', desk_dropped_at = NULL"
)
SETTINGS = {"core": "config.settings", "pubsub": "bench.pubsub_settings"}


@dataclass
class Config:
    server: str = "daphne"  # or "uvicorn"
    layer: str = "core"  # or "pubsub"
    compression: bool = True  # whether the server may negotiate permessage-deflate
    port: int = 8100
    redis_port: int = 6400
    database: str = "consult_bench"
    server_cpu: int = 0
    client_cpu: int = 1
    app: str = "config.asgi:application"
    server_args: tuple = ()  # e.g. ("--ping-interval", "300") for daphne
    db_pool: bool = True  # Django's psycopg pool, the default for PostgreSQL
    env: dict = field(default_factory=dict)  # extra settings, e.g. CHANNEL_CAPACITY
    processes: int = 1  # server processes, one per core from `server_cpu` on
    sql_log: bool = False  # log the bench database's statements, to count them

    @property
    def ports(self) -> list[int]:
        return [self.port + k for k in range(self.processes)]

    @property
    def server_cpus(self) -> list[int]:
        return [self.server_cpu + k for k in range(self.processes)]

    @property
    def database_url(self) -> str:
        return f"{PG_SERVER}/{self.database}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def bases(self) -> list[str]:
        """The WebSocket base URL of each server process."""
        return [f"ws://127.0.0.1:{port}" for port in self.ports]

    def describe(self) -> str:
        deflate = "deflate offered" if self.compression else "deflate off"
        pool = "" if self.db_pool else ", no db pool"
        app = "" if self.app == Config.app else f", app {self.app}"
        args = f", {' '.join(self.server_args)}" if self.server_args else ""
        procs = f", {self.processes} processes" if self.processes > 1 else ""
        return f"{self.server}, {self.layer} layer, {deflate}{pool}{app}{args}{procs}"


def pin_generator(config: Config) -> None:
    """Put this process on the generator core and allow many sockets.

    With a server on every core there is no core left for the generator: it
    runs wherever the scheduler puts it (and reports its CPU).
    """
    # The generator holds as many sockets as the server, so it tunes its
    # collector as the server does (config/asgi.py): with the defaults a
    # collection walks every long-lived object of 10,000 sockets again and
    # again, and each such pause is in every time the generator measures.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    cores = os.cpu_count() or 1
    if config.processes > 1:
        os.sched_setaffinity(0, range(cores))
    elif cores > config.client_cpu:
        os.sched_setaffinity(0, {config.client_cpu})
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_env(config: Config) -> dict:
    settings = {
        "DATABASE_POOL": "1" if config.db_pool else "0",
        # As deployed behind the proxy (deploy/): X-Forwarded-For is believed
        # from 127.0.0.1, and every socket and login is logged as JSON.
        "CONSULT_TRUSTED_PROXIES": "127.0.0.1",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        # For the commands run without the repository as working directory.
        "PYTHONPATH": str(ROOT),
    }
    return live.server_env(
        database_url=config.database_url,
        redis_url=f"redis://127.0.0.1:{config.redis_port}/0",
        secret_key="bench-only-secret-key",  # noqa: S106
        settings_module=SETTINGS[config.layer],
        admission=True,
        **(settings | config.env),
    )


def _run(args: list[str], env: dict | None = None, **kwargs) -> str:
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, **kwargs
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


class Stack:
    """Redis, the database and the servers; `restart_server()` between repetitions.

    `statements` (StatementLog, or None with `sql_log` off) and `backends`
    measure PostgreSQL's side once the database exists.
    """

    def __init__(self, config: Config):
        self.config = config
        on_core = [("taskset", "-c", str(cpu)) for cpu in config.server_cpus]
        self.redis = live.Redis(
            LOGS,
            config.redis_port,
            name="consult-bench-redis",
            args=("--maxclients", "20000"),
            # Beside the one server; between several, wherever there is room.
            wrapper=on_core[0] if config.processes == 1 else (),
        )
        self.servers = [
            live.Server(
                f"consult-bench-{port}",
                LOGS,
                server_env(config),
                port=port,
                command=self.server_command(port),
                wrapper=wrapper,
            )
            for port, wrapper in zip(config.ports, on_core, strict=True)
        ]
        self.server = self.servers[0]
        self.statements: pg.StatementLog | None = None
        self.backends: pg.Backends | None = None

    # --- the database -----------------------------------------------------------

    def fresh_database(self) -> None:
        psql = ["psql", f"{PG_SERVER}/postgres", "-qc"]
        name = self.config.database
        _run([*psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])
        _run([*psql, f'CREATE DATABASE "{name}"'])
        server = f"{PG_SERVER}/postgres"
        if self.config.sql_log:
            pg.StatementLog.enable(server, name)
            try:
                self.statements = pg.StatementLog(server, name)
            except (OSError, RuntimeError) as error:
                # E.g. the server's log unreadable by this user.
                raise RuntimeError(f"{error}: run with --no-sql-log") from error
        self.backends = pg.Backends(pg.postmaster_pid(server), name)
        env = server_env(self.config)
        _run([str(VENV / "python"), "manage.py", "migrate", "--noinput"], env=env)

    def seed(self, consultants: int, *, max_queue: int = 20, sessions_from: int = 0):
        """Create consultants b0..bN-1; session cookies minted for b<sessions_from>+."""
        out = _run(
            [
                str(VENV / "python"),
                "-m",
                "bench.seed",
                "--consultants",
                str(consultants),
                "--max-queue",
                str(max_queue),
                "--sessions-from",
                str(sessions_from),
                "--password",
                PASSWORD,
            ],
            env=server_env(self.config),
        )
        return json.loads(out)

    # --- the server -----------------------------------------------------------

    def server_command(self, port: int) -> list[str]:
        c = self.config
        if c.server == "daphne":
            return live.daphne(port, app=c.app, args=c.server_args)
        command = [
            str(VENV / "uvicorn"),
            c.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *c.server_args,
        ]
        if not c.compression:
            command.append("--ws-per-message-deflate=false")
        return command

    def start_server(self) -> None:
        for server in self.servers:
            server.start()

    def stop_server(self, *, graceful: bool = True) -> None:
        for server in self.servers:
            if graceful:
                server.stop()
            else:
                server.kill()

    def restart_server(self) -> None:
        """A fresh server on a clean slate: nothing of the last run leaks in."""
        self.stop_server()
        self.redis.flushall()
        _run(["psql", self.config.database_url, "-qc", RESET_SQL])
        self.start_server()

    @property
    def server_pid(self) -> int:
        return self.server.pid

    @property
    def server_pids(self) -> list[int]:
        return [server.pid for server in self.servers]

    @property
    def redis_pid(self) -> int:
        return self.redis.pid

    def stop(self) -> None:
        self.stop_server()
        self.redis.stop()

    def __enter__(self):
        try:
            self.redis.start()
            self.fresh_database()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()


def versions() -> dict:
    out = _run(
        [str(VENV / "python"), "-c", _VERSIONS],
    )
    found = json.loads(out)
    found["python"] = sys.version.split()[0]
    # Other engineers change the server while we measure: name the code.
    found["code"] = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return found


_VERSIONS = """
import json, importlib.metadata as m
names = ["Django", "channels", "channels-redis", "daphne", "uvicorn", "redis",
         "websockets", "Twisted", "autobahn", "psycopg"]
print(json.dumps({n: m.version(n) for n in names}))
"""
