"""Login throttling on /accounts/login/: per username and address, then a lockout."""

import secrets
import time

import pytest

from tests.factories import PASSWORD, make_consultant

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture
def address():
    # Counts live in the cache, which outlives a test: each test its own address.
    return "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))


@pytest.fixture
def login(client, settings, address):
    settings.CONSULT_LOGIN_MAX_FAILURES = 3
    # A fast hash keeps each attempt well inside the lockout windows below.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    make_consultant("ada")

    def attempt(password: str, *, username: str = "ada", remote: str = address):
        return client.post(
            LOGIN,
            {"username": username, "password": password},
            REMOTE_ADDR=remote,
            secure=True,
        )

    return attempt


def fail(login, times: int, **kwargs):
    for _ in range(times):
        assert login("wrong-password", **kwargs).status_code == 200


def test_right_password_logs_in(login):
    assert login(PASSWORD).status_code == 302


def test_after_too_many_failures_even_the_right_password_gets_429(login, client):
    fail(login, 3)

    locked = login(PASSWORD)

    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session


def test_lockout_holds_only_for_that_address(login):
    fail(login, 3)

    elsewhere = "10." + ".".join(str(secrets.randbelow(256)) for _ in range(3))

    assert login(PASSWORD, remote=elsewhere).status_code == 302


def test_a_success_clears_the_failures(login):
    fail(login, 2)
    assert login(PASSWORD).status_code == 302

    fail(login, 2)

    assert login(PASSWORD).status_code == 302


def test_lockout_ends_after_its_time(login, settings):
    settings.CONSULT_LOGIN_LOCKOUT_SECONDS = 2
    fail(login, 3)
    assert login(PASSWORD).status_code == 429

    time.sleep(2.5)

    assert login(PASSWORD).status_code == 302


def test_one_address_cannot_try_every_username(login):
    for n in range(12):
        login("wrong-password", username=f"user{n}-{secrets.token_hex(4)}")

    assert login(PASSWORD).status_code == 429
