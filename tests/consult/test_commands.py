import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from consult.models import Consultant

pytestmark = pytest.mark.django_db


def test_createconsultant_makes_a_user_who_can_log_in(client):
    call_command(
        "createconsultant",
        "ada",
        "--name",
        "Ada Lovelace",
        "--password",
        "pw-123456789",
    )
    consultant = Consultant.objects.get(slug="ada-lovelace")
    assert consultant.name == "Ada Lovelace"
    assert client.login(username="ada", password="pw-123456789")


def test_createconsultant_refuses_a_taken_username():
    call_command("createconsultant", "ada", "--password", "pw-123456789")
    with pytest.raises(CommandError):
        call_command("createconsultant", "ada", "--password", "pw-123456789")


def test_seed_demo_is_for_debug_only_and_idempotent(settings, capsys):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo")
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    assert Consultant.objects.count() == 3
    assert "demo-password" in capsys.readouterr().out


@pytest.mark.parametrize(
    "weak", ["1", "password", "short", "adalovelace1", "80217734912"]
)
def test_createconsultant_refuses_a_weak_password_and_creates_nothing(weak):
    with pytest.raises(CommandError, match="Password refused"):
        call_command(
            "createconsultant", "adalovelace1", "--name", "Ada", "--password", weak
        )

    assert not Consultant.objects.exists()
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize("username", ["bad user!", "", "ad<a>"])
def test_createconsultant_refuses_a_bad_username_and_creates_nothing(username):
    with pytest.raises(CommandError, match="Username refused"):
        call_command("createconsultant", username, "--password", "a-long-pass-42")
    assert not get_user_model().objects.exists()


def test_createconsultant_checks_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONSULTANT_PASSWORD", "12345678")
    with pytest.raises(CommandError, match="too common"):
        call_command("createconsultant", "ada")
    assert not Consultant.objects.exists()
