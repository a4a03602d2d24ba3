import base64
import hashlib
import hmac

import pytest

from consult.ice import ice_servers, turn_credential

SECRET = "relay-secret"


@pytest.fixture
def turn(settings):
    settings.CONSULT_STUN_URLS = ["stun:stun.example.org:3478"]
    settings.CONSULT_TURN_URLS = [
        "turn:turn.example.org:3478?transport=udp",
        "turns:turn.example.org:5349?transport=tcp",
    ]
    settings.CONSULT_TURN_SECRET = SECRET
    settings.CONSULT_TURN_CREDENTIAL_TTL_SECONDS = 3600
    return settings


def test_credential_is_base64_of_hmac_sha1_of_username_under_secret():
    username = "1700003600:abc"
    expected = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()

    assert base64.b64decode(turn_credential(SECRET, username)) == expected
    # The vector `openssl dgst -sha1 -hmac secret -binary | base64` gives.
    assert turn_credential("secret", "1:a") == "JZRYcMlvft7lxNZTB/T9f5E7SSM="


def test_turn_username_is_expiry_then_opaque_id(turn):
    _, relay = ice_servers(now=1_700_000_000.5)

    expiry, opaque = relay["username"].split(":")
    assert int(expiry) == 1_700_003_600
    assert len(opaque) >= 12
    assert relay["credential"] == turn_credential(SECRET, relay["username"])
    assert relay["urls"] == turn.CONSULT_TURN_URLS


def test_stun_comes_first_without_credentials(turn):
    stun, _ = ice_servers()

    assert stun == {"urls": ["stun:stun.example.org:3478"]}


def test_every_call_gets_its_own_credential(turn):
    first = ice_servers(now=1_700_000_000)[1]
    second = ice_servers(now=1_700_000_000)[1]

    assert first["username"] != second["username"]
    assert first["credential"] != second["credential"]


def test_ttl_setting_sets_the_expiry(turn):
    turn.CONSULT_TURN_CREDENTIAL_TTL_SECONDS = 600

    _, relay = ice_servers(now=1_000)

    assert relay["username"].startswith("1600:")


def test_without_turn_secret_only_stun_is_handed_out(turn):
    turn.CONSULT_TURN_SECRET = ""

    assert ice_servers() == [{"urls": ["stun:stun.example.org:3478"]}]


def test_with_nothing_configured_no_ice_servers(settings):
    settings.CONSULT_STUN_URLS = []
    settings.CONSULT_TURN_URLS = []

    assert ice_servers() == []
