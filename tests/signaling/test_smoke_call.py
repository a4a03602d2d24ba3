import pytest

from tests.factories import ANSWER, OFFER, make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_call_sets_up_end_to_end():
    from asgiref.sync import sync_to_async

    await sync_to_async(make_consultant)("ada")
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(
        {
            "type": "join",
            "consultant": "ada",
            "name": "Bo",
            "offer": {"type": "offer", "sdp": OFFER},
        }
    )
    queued = await receive_type(caller, "queued")
    assert queued["position"] == 1
    await desk.send_json_to({"type": "accept"})
    got = await receive_type(desk, "caller")
    assert got["offer"]["sdp"] == OFFER
    await desk.send_json_to(
        {"type": "answer", "answer": {"type": "answer", "sdp": ANSWER}}
    )
    accepted = await receive_type(caller, "accepted")
    assert accepted["answer"]["sdp"] == ANSWER
    await caller.send_json_to({"type": "hangup"})
    assert (await receive_type(desk, "hangup"))["by"] == "caller"
    await caller.disconnect()
    await desk.disconnect()
