"""`tracks` and `watchdog` through the sockets: relayed between the two parties
of a call only, the watchdog recorded; the join's connectivity on the desk."""

import pytest
from asgiref.sync import sync_to_async

from consult.models import Consultation
from tests.signaling.conftest import caller_socket, desk_socket, receive_type
from tests.signaling.test_caller_consumer import (
    ANSWER_FRAME,
    ada,  # noqa: F401
    expect_error,
    join_frame,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_tracks_and_watchdog_reach_the_other_party_only_and_are_recorded(ada):  # noqa: F811
    desk = await desk_socket("ada")
    caller, bystander = await caller_socket(), await caller_socket()
    await caller.send_json_to(join_frame(connectivity="relay"))
    await receive_type(caller, "queued")
    callers = []
    while not callers:
        callers = (await receive_type(desk, "queue"))["callers"]
    assert callers[0]["connectivity"] == "relay"
    await bystander.send_json_to(join_frame(name="By"))
    await receive_type(bystander, "queued")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    await desk.send_json_to({"type": "answer", "answer": ANSWER_FRAME})
    await receive_type(caller, "accepted")

    await caller.send_json_to({"type": "tracks", "muted": True, "camera_off": False})
    assert await receive_type(desk, "tracks") == {
        "type": "tracks",
        "muted": True,
        "camera_off": False,
        "audio_only": False,
    }
    await desk.send_json_to({"type": "watchdog", "step": "ice-restart"})
    assert await receive_type(caller, "watchdog") == {
        "type": "watchdog",
        "step": "ice-restart",
        "recovered": False,
    }
    await caller.send_json_to(
        {"type": "watchdog", "step": "ice-restart", "recovered": True}
    )
    await receive_type(desk, "watchdog")

    call = await sync_to_async(Consultation.objects.get)(outcome="active")
    assert (call.connectivity, call.watchdog_step, call.rescued_by) == (
        "relay",
        "ice-restart",
        "ice-restart",
    )
    # The waiting bystander is in no call: its frames go nowhere.
    await bystander.send_json_to({"type": "tracks", "muted": True, "camera_off": True})
    await expect_error(bystander, "not_in_call")
    assert await desk.receive_nothing(timeout=0.5)
    for socket in (desk, caller, bystander):
        await socket.disconnect()
