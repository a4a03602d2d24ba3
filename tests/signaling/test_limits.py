"""Caps per client address, through the real ASGI application."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from tests.factories import OFFER, make_consultant
from tests.signaling.conftest import ORIGIN, TIMEOUT, receive_type

pytestmark = pytest.mark.django_db(transaction=True)

PROXY = "172.30.0.10"


def from_peer(peer: str):
    """The application as reached by a socket whose peer is `peer`."""

    async def app(scope, receive, send):
        return await application(dict(scope, client=[peer, 50000]), receive, send)

    return app


async def open_from(peer: str, forwarded_for: str | None = None):
    headers = [ORIGIN]
    if forwarded_for:
        headers.append((b"x-forwarded-for", forwarded_for.encode()))
    socket = WebsocketCommunicator(from_peer(peer), "/ws/call/", headers=headers)
    connected, _ = await socket.connect(timeout=TIMEOUT)
    assert connected
    return socket


async def refused_with(socket) -> int | None:
    """The close code if the server closed the socket at once, else None."""
    first = await socket.receive_output(TIMEOUT)
    if first["type"] == "websocket.close":
        return first["code"]
    return None


async def close_all(sockets):
    for socket in sockets:
        await socket.disconnect()


async def test_sockets_over_the_cap_from_one_address_are_closed_with_4429(settings):
    settings.CONSULT_MAX_SOCKETS_PER_ADDRESS = 2
    kept = [await open_from("203.0.113.1") for _ in range(2)]
    for socket in kept:
        assert await refused_with(socket) is None

    extra = await open_from("203.0.113.1")
    other = await open_from("203.0.113.2")

    assert await refused_with(extra) == 4429
    assert await refused_with(other) is None
    await kept.pop().disconnect()
    again = await open_from("203.0.113.1")
    assert await refused_with(again) is None
    await close_all([*kept, extra, other, again])


async def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(settings):
    settings.CONSULT_MAX_SOCKETS_PER_ADDRESS = 1
    settings.CONSULT_TRUSTED_PROXIES = [PROXY]
    first = await open_from(PROXY, "203.0.113.5")
    assert await refused_with(first) is None

    # A client cannot pose as someone else by adding hops of its own.
    same_client = await open_from(PROXY, "198.51.100.9, 203.0.113.5")
    other_client = await open_from(PROXY, "203.0.113.6")

    assert await refused_with(same_client) == 4429
    assert await refused_with(other_client) is None
    await close_all([first, same_client, other_client])


async def test_forwarded_header_from_an_untrusted_peer_is_ignored(settings):
    settings.CONSULT_MAX_SOCKETS_PER_ADDRESS = 1
    settings.CONSULT_TRUSTED_PROXIES = [PROXY]
    first = await open_from("203.0.113.7", "198.51.100.1")
    assert await refused_with(first) is None

    second = await open_from("203.0.113.7", "198.51.100.2")

    assert await refused_with(second) == 4429
    await close_all([first, second])


async def join(socket) -> dict:
    await socket.send_json_to(
        {
            "type": "join",
            "consultant": "ada",
            "name": "Bo",
            "offer": {"type": "offer", "sdp": OFFER},
        }
    )
    while True:
        frame = await socket.receive_json_from(TIMEOUT)
        if frame["type"] in {"queued", "error"}:
            return frame


async def test_too_many_waiting_from_one_address_get_their_own_code(settings):
    settings.CONSULT_MAX_WAITING_PER_ADDRESS = 2
    await sync_to_async(make_consultant)("ada")
    sockets = [await open_from("203.0.113.9") for _ in range(3)]
    for socket in sockets:
        assert (await socket.receive_json_from(TIMEOUT))["type"] == "hello"
    assert (await join(sockets[0]))["type"] == "queued"
    assert (await join(sockets[1]))["type"] == "queued"

    third = await join(sockets[2])
    elsewhere = await open_from("203.0.113.10")
    await elsewhere.receive_json_from(TIMEOUT)

    code = "too_many_from_address"
    assert third == {"type": "error", "code": code, "message": third["message"]}
    assert (await join(elsewhere))["type"] == "queued"
    await sockets[0].send_json_to({"type": "cancel"})
    assert (await receive_type(sockets[0], "cancelled"))["type"] == "cancelled"
    assert (await join(sockets[2]))["type"] == "queued"
    await close_all([*sockets, elsewhere])
