"""One login throttle (django-axes) for every login view: ours and the admin's."""

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model

from tests.factories import PASSWORD, make_consultant

pytestmark = pytest.mark.django_db

OURS = "/accounts/login/"
ADMIN = "/admin/login/"
HERE = "10.1.2.3"
ELSEWHERE = "10.9.8.7"
ROOT_PASSWORD = "a-root-password"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    # A fast hash keeps each attempt well inside the lockout windows below.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ada(db):
    return make_consultant("ada")


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", password=ROOT_PASSWORD)


@pytest.fixture
def login(client):
    def attempt(password, *, username="ada", remote=HERE, path=OURS):
        return client.post(
            path,
            {"username": username, "password": password, "next": "/admin/"},
            REMOTE_ADDR=remote,
            secure=True,
        )

    return attempt


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(login, times: int, **kwargs) -> None:
    for _ in range(times):
        login("wrong-password", **kwargs)


def test_right_password_logs_in_on_both_views(login, client, ada, root):
    assert login(PASSWORD).status_code == 302
    client.logout()
    assert login(ROOT_PASSWORD, username="root", path=ADMIN).status_code == 302


def test_thirty_wrong_admin_passwords_then_the_right_one_is_refused(
    login, client, root
):
    statuses = {
        login("guess", username="root", path=ADMIN).status_code for _ in range(30)
    }

    locked = login(ROOT_PASSWORD, username="root", path=ADMIN)

    assert 429 in statuses
    assert locked.status_code == 429
    assert not logged_in(client)


def test_lockout_is_a_clear_page_not_an_error(login, ada, settings):
    fail(login, settings.AXES_FAILURE_LIMIT)

    locked = login(PASSWORD)

    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    assert int(locked["Retry-After"]) == settings.CONSULT_LOGIN_LOCKOUT_SECONDS


def test_failures_on_our_login_lock_the_admin_login_too(login, client, root, settings):
    fail(login, settings.AXES_FAILURE_LIMIT, username="root")

    assert login(ROOT_PASSWORD, username="root", path=ADMIN).status_code == 429
    assert not logged_in(client)


def test_failures_on_the_admin_login_lock_our_login_too(login, client, ada, settings):
    fail(login, settings.AXES_FAILURE_LIMIT, path=ADMIN)

    assert login(PASSWORD).status_code == 429
    assert not logged_in(client)


def test_username_variants_count_as_one_name(login, client, ada, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for variant in ("ada", " ada", "\uff41\uff44\uff41"):  # fullwidth ada
        login("wrong-password", username=variant)

    assert login(PASSWORD, username="\uff41\uff44\uff41").status_code == 429
    assert login(PASSWORD, username="ada ").status_code == 429
    assert not logged_in(client)
    assert set(AccessAttempt.objects.values_list("username", flat=True)) == {"ada"}


def test_lockout_holds_only_for_that_address(login, ada, settings):
    fail(login, settings.AXES_FAILURE_LIMIT)

    assert login(PASSWORD, remote=ELSEWHERE).status_code == 302


def test_address_wide_failures_do_not_lock_out_a_name_that_has_not_failed(
    login, client, ada, settings
):
    """Twenty failures for random names behind one NAT; ada's right password works."""
    for n in range(20):
        login("wrong-password", username=f"nobody-{n}")
    assert login("wrong-password", username="nobody-0").status_code == 429

    assert login(PASSWORD).status_code == 302
    assert logged_in(client)


def test_address_wide_failures_lock_out_a_name_that_failed_from_there(
    login, client, ada, settings
):
    login("wrong-password")  # once: far below the limit of the name alone
    for n in range(settings.AXES_FAILURE_LIMIT * 4):
        login("wrong-password", username=f"nobody-{n}")

    assert login(PASSWORD).status_code == 429
    assert not logged_in(client)
    # Elsewhere the name is fine.
    assert login(PASSWORD, remote=ELSEWHERE).status_code == 302


def test_a_success_forgets_that_names_failures_only(login, client, ada, settings):
    settings.AXES_FAILURE_LIMIT = 3
    fail(login, 2)
    assert login(PASSWORD).status_code == 302
    client.logout()
    fail(login, 2)
    assert login(PASSWORD).status_code == 302
    client.logout()
    # Logging in to an account of one's own does not wipe the address's count.
    make_consultant("mallory")
    login("wrong-password")
    for n in range(11):
        login("wrong-password", username=f"nobody-{n}")
    assert login(PASSWORD, username="mallory").status_code == 302
    client.logout()

    assert login(PASSWORD).status_code == 429


def test_lockout_ends_after_its_time(login, ada, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    fail(login, settings.AXES_FAILURE_LIMIT)
    assert login(PASSWORD).status_code == 429

    time.sleep(2.5)

    assert login(PASSWORD).status_code == 302


def test_an_admin_unlocks_in_the_admin(login, client, ada, root, settings):
    fail(login, settings.AXES_FAILURE_LIMIT)
    assert login(PASSWORD).status_code == 429

    client.force_login(root)
    attempts = client.get("/admin/axes/accessattempt/")
    assert attempts.status_code == 200 and b"ada" in attempts.content
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    client.logout()

    assert not AccessAttempt.objects.exists()
    assert login(PASSWORD).status_code == 302
