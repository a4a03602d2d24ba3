"""Sockets through the real ASGI application: origin check, session auth, routing."""

import pytest
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from config.asgi import application
from signaling import runtime
from signaling.consumers.desk import QUEUE_MESSAGE_LIMITS
from tests.factories import PASSWORD

ORIGIN = (b"origin", b"http://testserver")
TIMEOUT = 5


@pytest.fixture(autouse=True)
async def fresh_runtime():
    """A clean channel layer and this test's own server runtime.

    Each test runs on an event loop of its own; a layer keeps loop-bound
    locks, so every test gets a new layer instance too.
    """
    channel_layers.backends.clear()
    # Per-process allowances outlive a test; ids are reused after a flush.
    QUEUE_MESSAGE_LIMITS.clear()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    yield
    await runtime.stop()


def session_cookie(username: str) -> bytes:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def open_socket(path: str, *, cookie: bytes | None = None, origin=ORIGIN):
    headers = [origin] if origin else []
    if cookie:
        headers.append((b"cookie", cookie))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    return communicator, connected, code


async def caller_socket():
    communicator, connected, _ = await open_socket("/ws/call/")
    assert connected
    hello = await communicator.receive_json_from(TIMEOUT)
    assert hello["type"] == "hello"
    return communicator


async def desk_socket(username: str):
    from asgiref.sync import sync_to_async

    cookie = await sync_to_async(session_cookie)(username)
    communicator, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    assert connected
    hello = await communicator.receive_json_from(TIMEOUT)
    assert hello["type"] == "hello", hello
    communicator.hello = hello
    queue = await communicator.receive_json_from(TIMEOUT)
    assert queue["type"] == "queue"
    return communicator


async def receive_type(communicator, type_: str, wait: float = TIMEOUT) -> dict:
    """The next frame of `type_`, skipping coalesced pushes that may come between."""
    while True:
        frame = await communicator.receive_json_from(wait)
        if frame["type"] == type_:
            return frame
        assert frame["type"] in {"consultants", "position", "queue", "peer"}, frame


def make_user(username: str):
    return get_user_model().objects.create_user(username=username, password=PASSWORD)
