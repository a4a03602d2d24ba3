"""REDIS_URL in every form redis-py reads (redis://, rediss://, unix://); a bad one
is refused at start-up, before anything is served."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.core.cache.backends.redis import RedisCache
from redis.asyncio import SSLConnection
from redis.asyncio.connection import UnixDomainSocketConnection

from signaling.layers import ResilientRedisChannelLayer
from tests.factories import PASSWORD, make_consultant
from tests.live import ROOT, Redis
from tests.signaling.live import Peer, login, running_servers

TIMEOUT = 5


def start_up(redis_url: str) -> subprocess.CompletedProcess:
    """Load the settings as a server process would, with this REDIS_URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(REDIS_URL=redis_url, DJANGO_SECRET_KEY="x" * 50)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "url",
    [
        "localhost:6379",
        "http://127.0.0.1:6379",
        "redis://",
        "redis://127.0.0.1:port/0",
        "redis://127.0.0.1:6379/zero",
        "unix://",
    ],
)
def test_a_bad_redis_url_is_refused_at_start_up(url):
    started = start_up(url)
    assert started.returncode != 0
    assert "ImproperlyConfigured: REDIS_URL is not" in started.stderr


def test_the_refusal_does_not_print_the_password():
    started = start_up("redis://:s3cret-pw@127.0.0.1:6379/zero")
    assert "ImproperlyConfigured" in started.stderr
    assert "s3cret-pw" not in started.stderr


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/6",
        "redis://:pw@redis:6379",
        "rediss://redis.example.com:6380/1",
        "unix:///run/redis/redis.sock?db=6",
    ],
)
def test_good_redis_urls_start(url):
    assert start_up(url).returncode == 0


def test_a_tls_url_makes_tls_connections():
    layer = ResilientRedisChannelLayer(hosts=["rediss://redis.example.com:6380/1"])
    pool = layer.create_pool(0)
    assert issubclass(pool.connection_class, SSLConnection)


@pytest.fixture(scope="module")
def unix_redis():
    """A private redis-server listening on a unix socket (and a TCP port)."""
    # A unix socket's path must stay short (about 100 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="redis-", dir="/tmp"))
    socket_path = workdir / "redis.sock"
    server = Redis(workdir, args=("--unixsocket", str(socket_path)))
    server.start()
    yield f"unix://{socket_path}?db=6"
    server.kill()


async def test_the_channel_layer_works_on_a_unix_socket(unix_redis):
    layer = ResilientRedisChannelLayer(hosts=[unix_redis], prefix="unix-test")
    assert issubclass(layer.create_pool(0).connection_class, UnixDomainSocketConnection)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "relay.frame", "n": 1})
    assert (await layer.receive(channel))["n"] == 1
    await layer.flush()


def test_the_cache_works_on_a_unix_socket(unix_redis):
    cache = RedisCache(unix_redis, {})
    cache.set("unix-test", 42)
    assert cache.get("unix-test") == 42


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
async def test_a_server_on_a_unix_socket_serves_pages_logins_and_sockets(
    unix_redis, tmp_path
):
    with running_servers(1, tmp_path, unix_redis) as (server,):
        await database_sync_to_async(make_consultant)("ada", presence="offline")
        assert server.get("/")[0] == 200
        session = await database_sync_to_async(login)(server, "ada", PASSWORD)
        desk = await Peer.open(server, "/ws/desk/", session)
        assert (await desk.expect("hello"))["consultant"]["slug"] == "ada"
        caller = await Peer.open(server, "/ws/call/")
        hello = await caller.expect("hello")
        assert hello["consultants"][0]["status"] == "online"
        await caller.ws.close()
        await desk.ws.close()
