"""WebSocket origins match scheme, host and port exactly, for both sockets."""

import os

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from config.asgi import application
from signaling.origins import parse_origin
from tests.factories import PASSWORD, make_consultant
from tests.live import HOST
from tests.signaling.conftest import TIMEOUT, session_cookie
from tests.signaling.live import Peer, login, running_servers

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ("/ws/desk/", "/ws/call/")


@pytest.fixture
async def cookie():
    await sync_to_async(make_consultant)("ada", presence="offline")
    return await sync_to_async(session_cookie)("ada")


async def handshake(path: str, cookie: bytes, *headers: tuple[bytes, bytes]) -> bool:
    """Whether the socket is accepted; it is closed again at once."""
    communicator = WebsocketCommunicator(
        application, path, headers=[*headers, (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    await communicator.disconnect()
    return connected


def origin(value: str) -> tuple[bytes, bytes]:
    return (b"origin", value.encode())


def host(value: str) -> tuple[bytes, bytes]:
    return (b"host", value.encode())


@pytest.mark.parametrize("path", PATHS)
async def test_the_origin_the_socket_is_opened_on_is_accepted(path, cookie):
    assert await handshake(
        path, cookie, origin("http://testserver"), host("testserver")
    )
    assert await handshake(
        path, cookie, origin("http://testserver:8000"), host("testserver:8000")
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "page",
    [
        "http://testserver:8001",  # another port of the same host
        "https://testserver",  # another scheme
        "http://testserver:80.evil.example",
        "http://evil.example",
        "null",
        "http://testserver/path",
    ],
)
async def test_any_other_origin_is_refused(path, page, cookie):
    assert not await handshake(path, cookie, origin(page), host("testserver"))


async def test_another_port_is_refused_even_when_the_site_is_on_a_port(cookie):
    for page in ("http://testserver", "http://testserver:8001"):
        assert not await handshake(
            "/ws/desk/", cookie, origin(page), host("testserver:8000")
        )


async def test_no_origin_is_refused(cookie):
    assert not await handshake("/ws/desk/", cookie, host("testserver"))


async def test_a_host_we_do_not_serve_is_refused_even_from_its_own_origin(cookie):
    assert not await handshake(
        "/ws/desk/", cookie, origin("http://evil.example"), host("evil.example")
    )


async def test_behind_the_tls_proxy_the_https_origin_is_the_sites(cookie):
    proto = (b"x-forwarded-proto", b"https")
    assert await handshake(
        "/ws/desk/", cookie, origin("https://testserver"), host("testserver"), proto
    )
    assert not await handshake(
        "/ws/desk/", cookie, origin("http://testserver"), host("testserver"), proto
    )


async def test_configured_origins_are_accepted_exactly(cookie, settings):
    settings.CONSULT_ALLOWED_ORIGINS = ["https://app.example.com"]
    here = host("testserver")
    assert await handshake("/ws/desk/", cookie, origin("https://app.example.com"), here)
    assert await handshake(
        "/ws/desk/", cookie, origin("https://app.example.com:443"), here
    )
    for page in ("https://app.example.com:8443", "http://app.example.com"):
        assert not await handshake("/ws/desk/", cookie, origin(page), here)


def test_origins_parse_to_scheme_host_and_port():
    assert parse_origin("https://Example.com") == ("https", "example.com", 443)
    assert parse_origin("http://[::1]:8000") == ("http", "::1", 8000)
    for bad in ("null", "ftp://example.com", "http://u@example.com", "http://x:99999"):
        assert parse_origin(bad) is None


@pytest.mark.processes
async def test_a_page_on_another_port_cannot_open_a_desk_on_a_real_server(tmp_path):
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    with running_servers(1, tmp_path, redis_url) as (server,):
        await database_sync_to_async(make_consultant)("ada", presence="offline")
        session = await database_sync_to_async(login)(server, "ada", PASSWORD)
        url = f"ws://{HOST}:{server.port}/ws/desk/"
        other = f"http://{HOST}:{server.port + 1}"
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                url, origin=other, additional_headers={"Cookie": session}, proxy=None
            )
        assert refused.value.response.status_code == 403

        desk = await Peer.open(server, "/ws/desk/", session)
        assert (await desk.expect("hello"))["consultant"]["slug"] == "ada"
        await desk.ws.close()
