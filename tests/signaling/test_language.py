"""Error frames keep their code and word their message in the socket's language."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from signaling.language import socket_language
from tests.factories import make_consultant
from tests.signaling.conftest import ORIGIN, TIMEOUT, receive_type

pytestmark = pytest.mark.django_db(transaction=True)

JOIN_UNKNOWN = {
    "type": "join",
    "consultant": "nobody",
    "name": "Bo",
    "offer": {"type": "offer", "sdp": "v=0"},
}


def scope(query: str = "", **headers: str) -> dict:
    return {
        "query_string": query.encode(),
        "headers": [
            (k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()
        ],
    }


async def error_for(path: str, headers: list) -> dict:
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, *headers])
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    await communicator.receive_json_from(TIMEOUT)  # hello
    await communicator.send_json_to(JOIN_UNKNOWN)
    frame = await receive_type(communicator, "error")
    await communicator.disconnect()
    return frame


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada")


async def test_error_message_follows_accept_language_and_keeps_its_code(ada):
    korean = await error_for("/ws/call/", [(b"accept-language", b"ko-KR,ko;q=0.9")])
    english = await error_for("/ws/call/", [(b"accept-language", b"en-US")])

    assert korean["code"] == english["code"] == "unknown_consultant"
    assert english["message"] == "No such consultant."
    assert korean["message"] == "그런 상담사가 없습니다."


async def test_the_page_language_in_the_query_wins_over_the_header(ada):
    frame = await error_for("/ws/call/?lang=ko", [(b"accept-language", b"en")])
    assert frame["message"] == "그런 상담사가 없습니다."


def test_socket_language_order_query_cookie_header_default():
    assert socket_language(scope("lang=ko", cookie="django_language=en")) == "ko"
    assert (
        socket_language(scope(cookie="django_language=ko", accept_language="en"))
        == "ko"
    )
    assert socket_language(scope(accept_language="fr-FR, ko;q=0.5")) == "ko"
    assert socket_language(scope(accept_language="fr, de")) == "en"
    # Junk is no choice: the next source, or the default.
    assert socket_language(scope("lang=../../x", cookie='"broken')) == "en"
    assert socket_language(scope("lang=zz", accept_language="ko")) == "ko"
