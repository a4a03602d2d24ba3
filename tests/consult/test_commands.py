import pytest
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
