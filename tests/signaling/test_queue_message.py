"""Word from the consultant to their queue: who hears it, who does not, limits."""

import pytest
from asgiref.sync import sync_to_async

from consult.models import Consultant
from tests.factories import make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type
from tests.signaling.test_caller_consumer import expect_error, join_frame, quiet_frames

pytestmark = pytest.mark.django_db(transaction=True)

LATE = "Running about 10 minutes late, sorry!"


@pytest.fixture
async def ada(transactional_db):
    await sync_to_async(make_consultant)("grace")
    return await sync_to_async(make_consultant)("ada")


async def waiting_caller(consultant: str, name: str):
    caller = await caller_socket()
    await caller.send_json_to(join_frame(consultant=consultant, name=name))
    queued = await receive_type(caller, "queued")
    return caller, queued


async def test_every_waiting_caller_of_that_consultant_hears_it_and_no_one_else(ada):
    desk = await desk_socket("ada")
    first, _ = await waiting_caller("ada", "One")
    second, _ = await waiting_caller("ada", "Two")
    elsewhere, _ = await waiting_caller("grace", "Other")
    lobby = await caller_socket()

    await desk.send_json_to({"type": "queue_message", "text": LATE})

    assert await receive_type(desk, "queue_message_set") == {
        "type": "queue_message_set",
        "text": LATE,
        "waiting": 2,
    }
    for caller in (first, second):
        frame = await receive_type(caller, "consultant_message")
        assert frame == {"type": "consultant_message", "text": LATE}
    for bystander in (elsewhere, lobby):
        heard = {f["type"] for f in await quiet_frames(bystander)}
        assert "consultant_message" not in heard
    for socket in (desk, first, second, elsewhere, lobby):
        await socket.disconnect()


async def test_callers_who_join_later_get_it_with_their_place_and_clearing_reaches_them(
    ada,
):
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "queue_message", "text": LATE})
    await receive_type(desk, "queue_message_set")

    late, queued = await waiting_caller("ada", "Late")
    assert queued["consultant_message"] == LATE

    await desk.send_json_to({"type": "queue_message", "text": ""})
    assert (await receive_type(late, "consultant_message"))["text"] == ""
    consultant = await Consultant.objects.aget(slug="ada")
    assert consultant.queue_message == ""
    for socket in (late, desk):
        await socket.disconnect()


async def test_a_reopened_desk_is_told_the_current_message(ada):
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "queue_message", "text": LATE})
    await receive_type(desk, "queue_message_set")
    await desk.disconnect()
    again = await desk_socket("ada")
    assert again.hello["queue_message"] == LATE
    await again.disconnect()


@pytest.mark.parametrize(
    "text", ["x" * 281, 42, None, "bell\x07", "\u202eevil"], ids=repr
)
async def test_bad_text_is_refused_and_changes_nothing(ada, text):
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "queue_message", "text": text})
    await expect_error(desk, "bad_message")
    consultant = await Consultant.objects.aget(slug="ada")
    assert consultant.queue_message == ""
    await desk.disconnect()


async def test_changes_are_rate_limited_per_consultant(ada):
    desk = await desk_socket("ada")
    for n in range(3):
        await desk.send_json_to({"type": "queue_message", "text": f"note {n}"})
        await receive_type(desk, "queue_message_set")
    # A new desk socket does not bring a new allowance.
    await desk.disconnect()
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "queue_message", "text": "one too many"})
    await expect_error(desk, "too_fast")
    consultant = await Consultant.objects.aget(slug="ada")
    assert consultant.queue_message == "note 2"
    await desk.disconnect()


async def test_a_caller_cannot_send_one(ada):
    caller, _ = await waiting_caller("ada", "Sly")
    await caller.send_json_to({"type": "queue_message", "text": "free calls!"})
    await expect_error(caller, "bad_message")
    consultant = await Consultant.objects.aget(slug="ada")
    assert consultant.queue_message == ""
    await caller.disconnect()
