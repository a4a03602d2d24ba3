"""A real coturn, run with deploy/turnserver.conf inside a loopback-only namespace.

The app hands out credentials in `hello`; a relay-only call made with them
must connect through coturn and carry media, and coturn must refuse expired
credentials and private peers. The probe (relay_probe.py) runs in its own
network namespace (`unshare --net`), so no packet leaves this machine.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from consult.ice import ice_servers
from tests.factories import make_consultant
from tests.signaling.conftest import open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = Path(__file__).with_name("relay_probe.py")
SECRET = "turn-test-secret"
PORT = 34780
TTL = 3600


@pytest.fixture(autouse=True)
def turn_configured(settings):
    settings.CONSULT_STUN_URLS = []
    settings.CONSULT_TURN_URLS = [f"turn:127.0.0.1:{PORT}?transport=udp"]
    settings.CONSULT_TURN_SECRET = SECRET
    settings.CONSULT_TURN_CREDENTIAL_TTL_SECONDS = TTL


def probe(**checks) -> dict:
    plan = {"secret": SECRET, "realm": "consult.test", "port": PORT, **checks}
    done = subprocess.run(
        ["unshare", "--net", sys.executable, str(PROBE)],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["interfaces"] == ["lo"], "the probe must see only loopback"
    return report


async def hello_ice_servers(path: str, cookie: bytes | None = None) -> list[dict]:
    socket, connected, _ = await open_socket(path, cookie=cookie)
    assert connected
    hello = await socket.receive_json_from(5)
    await socket.disconnect()
    assert hello["type"] == "hello"
    return hello["ice_servers"]


async def test_relay_only_call_with_hello_credentials_connects_and_carries_media():
    await sync_to_async(make_consultant)("ada")
    cookie = await sync_to_async(session_cookie)("ada")
    caller = await hello_ice_servers("/ws/call/")
    desk = await hello_ice_servers("/ws/desk/", cookie=cookie)

    report = await sync_to_async(probe)(call={"caller": caller, "desk": desk})

    call = report["call"]
    assert call["state"] == ["connected", "connected"]
    assert call["frames"] == 30
    assert call["last_frame_size"] == [64, 48]
    for side in ("caller", "desk"):
        assert call[side]["local"] == ["relay"]
        assert call[side]["remote"] == ["relay"]
        assert call[side]["selected"] == ["relay", "relay"]


def test_fresh_credential_allocates_but_private_peers_are_refused():
    report = probe(credentials=ice_servers())

    assert report["credentials"] == {
        "allocation_error": None,
        "private_peer_error": 403,
    }


def test_expired_credential_is_refused():
    expired = ice_servers(now=time.time() - TTL - 60)

    report = probe(credentials=expired)

    assert report["credentials"] == {"allocation_error": 401}


def test_credential_signed_with_another_secret_is_refused(settings):
    settings.CONSULT_TURN_SECRET = "not-the-relay-secret"

    report = probe(credentials=ice_servers())

    assert report["credentials"] == {"allocation_error": 401}
