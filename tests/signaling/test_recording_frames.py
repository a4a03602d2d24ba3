"""Recording consent over both sockets (docs/protocol.md, 5.3)."""

import pytest
from asgiref.sync import sync_to_async

from consult.models import RecordingConsent
from tests.factories import make_consultant
from tests.signaling.conftest import (
    caller_socket,
    desk_socket,
    open_socket,
    receive_type,
    session_cookie,
)
from tests.signaling.test_caller_consumer import expect_error, join_frame

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada")


async def in_call(caller_path: str = "/ws/call/"):
    desk = await desk_socket("ada")
    caller, connected, _ = await open_socket(caller_path)
    assert connected
    assert (await receive_type(caller, "hello"))["type"] == "hello"
    await caller.send_json_to(join_frame(name="Cy"))
    await receive_type(caller, "queued")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    return desk, caller


async def test_asked_agreed_and_stopped_by_the_caller(ada):
    desk, caller = await in_call()
    await desk.send_json_to({"type": "record_request"})
    asked = await receive_type(desk, "recording")
    assert asked["state"] == "asked"
    assert (await receive_type(caller, "recording"))["state"] == "asked"
    ask = await receive_type(caller, "record_ask")
    assert ask["recording"] == asked["recording"]
    assert (ask["consultant"], ask["version"], ask["video"]) == ("Ada", "1", False)
    assert "Ada" in ask["text"] and ask["retention_days"] == 30

    await caller.send_json_to(
        {"type": "record_consent", "recording": ask["recording"], "accept": True}
    )
    on = {"type": "recording", "recording": ask["recording"], "state": "on"}
    assert await receive_type(desk, "recording") == {**on, "video": False}
    assert await receive_type(caller, "recording") == {**on, "video": False}
    shown = await sync_to_async(
        lambda: set(RecordingConsent.objects.values_list("text_shown", flat=True))
    )()
    assert shown == {ask["text"]}

    await caller.send_json_to({"type": "record_stop"})
    stopped = {**on, "state": "stopped", "by": "caller"}
    assert await receive_type(desk, "recording") == stopped
    assert await receive_type(caller, "recording") == stopped
    await desk.send_json_to({"type": "record_stop"})
    await expect_error(desk, "not_recording")
    await desk.disconnect()
    await caller.disconnect()


async def test_the_caller_is_asked_in_their_own_language(ada):
    # A Korean caller, an English desk: the question, and the receipt of both
    # parties, are in the words the caller reads.
    desk, caller = await in_call("/ws/call/?lang=ko")
    await desk.send_json_to({"type": "record_request"})
    assert (await receive_type(caller, "recording"))["state"] == "asked"
    ask = await receive_type(caller, "record_ask")
    assert "Ada" in ask["text"] and "record this call" not in ask["text"]
    assert "녹" in ask["text"]
    await caller.send_json_to(
        {"type": "record_consent", "recording": ask["recording"], "accept": False}
    )
    await receive_type(caller, "recording")
    shown = await sync_to_async(
        lambda: set(RecordingConsent.objects.values_list("text_shown", flat=True))
    )()
    assert shown == {ask["text"]}
    await desk.disconnect()
    await caller.disconnect()


async def test_only_the_desk_asks_and_only_in_a_call(ada):
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "record_request"})
    await expect_error(desk, "not_recording")
    caller = await caller_socket()
    await caller.send_json_to({"type": "record_request"})
    await expect_error(caller, "bad_message")
    await caller.send_json_to(
        {"type": "record_consent", "recording": "1", "accept": True}
    )
    await expect_error(caller, "bad_message")
    await desk.disconnect()
    await caller.disconnect()


async def test_a_reopened_desk_hears_the_running_recording_and_where_to_go_on(ada):
    desk, caller = await in_call()
    await desk.send_json_to({"type": "record_request"})
    await receive_type(caller, "recording")  # asked
    ask = await receive_type(caller, "record_ask")
    await caller.send_json_to(
        {"type": "record_consent", "recording": ask["recording"], "accept": True}
    )
    await receive_type(desk, "recording")
    await receive_type(desk, "recording")
    await desk.disconnect()

    cookie = await sync_to_async(session_cookie)("ada")
    again, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    assert connected
    assert (await again.receive_json_from())["type"] == "hello"
    await receive_type(again, "resumed")
    assert await receive_type(again, "recording") == {
        "type": "recording",
        "recording": ask["recording"],
        "state": "on",
        "video": False,
        "next_seq": 0,
    }
    await caller.disconnect()
    await again.disconnect()


async def test_a_caller_back_before_answering_is_asked_again(ada):
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame(name="Cy"))
    queued = await receive_type(caller, "queued")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    await desk.send_json_to({"type": "record_request"})
    await receive_type(caller, "recording")
    ask = await receive_type(caller, "record_ask")
    await caller.disconnect()

    again = await caller_socket()
    await again.send_json_to({"type": "resume", "token": queued["token"]})
    await receive_type(again, "resumed")
    assert await receive_type(again, "record_ask") == ask
    await again.disconnect()
    await desk.disconnect()
