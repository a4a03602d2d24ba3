"""Logging in needs no Redis: with Redis stopped, the login pages (ours and the
admin's) still serve and log in, or say "try again" (503); never a 500."""

import uuid

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from tests.factories import PASSWORD, make_consultant
from tests.live import Redis, Server, server_env, started_redis
from tests.signaling.live import database_url, submit_login

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

PRIVATE_PORTS = range(6400, 6410)
LOGINS = [("/accounts/login/", "ada"), ("/admin/login/", "root")]


@pytest.fixture
def redis(tmp_path):
    with started_redis(tmp_path, PRIVATE_PORTS) as server:
        yield server


@pytest.fixture
def users(transactional_db):
    make_consultant("ada")
    get_user_model().objects.create_superuser("root", password=PASSWORD)


def server_on(redis: Redis, tmp_path) -> Server:
    env = server_env(
        database_url=database_url(connection.settings_dict),
        redis_url=redis.url,
        secret_key=settings.SECRET_KEY,
        CHANNEL_PREFIX=f"test-{uuid.uuid4().hex[:12]}",
        PYTHONUNBUFFERED="1",
    )
    return Server("server", tmp_path, env)


def log_in(server: Server, path: str, username: str) -> tuple[int, int, str]:
    """GET the login page, POST the right password: (GET status, POST status, where)."""
    got, response = submit_login(server, path, username, PASSWORD, timeout=30)
    if response is None:
        return got, 0, ""
    return got, response.status, response.headers.get("Location", "")


def assert_logins_work(server: Server) -> None:
    for path, username in LOGINS:
        got, posted, where = log_in(server, path, username)
        assert got in (200, 503), (path, got)
        if got == 200:  # logged in: sent on, not back to a login page
            assert posted == 302 and "login" not in where, (path, posted, where)


async def test_login_works_while_redis_is_down(users, redis, tmp_path):
    server = server_on(redis, tmp_path)
    try:
        server.start()
        redis.kill()

        await database_sync_to_async(assert_logins_work)(server)
    finally:
        server.kill()
        print(server.log_tail(4000))


async def test_login_works_on_a_server_that_started_while_redis_was_down(
    users, redis, tmp_path
):
    redis.kill()
    server = server_on(redis, tmp_path)
    try:
        server.start(wait=False)
        server.wait_until(lambda: server.get("/accounts/login/")[0] in (200, 503))

        await database_sync_to_async(assert_logins_work)(server)
        assert "Traceback" not in server.log_text()
    finally:
        server.kill()
        print(server.log_tail(4000))
