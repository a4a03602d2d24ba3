"""Callbacks: a caller asks to be called back; the desk sees it and clears it."""

import pytest
from asgiref.sync import sync_to_async

from consult.models import Callback
from tests.factories import make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type
from tests.signaling.test_caller_consumer import expect_error

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def floor(transactional_db):
    await sync_to_async(make_consultant)("grace")
    return await sync_to_async(make_consultant)("ada")


def callback_frame(consultant="ada", **fields):
    return {
        "type": "callback",
        "consultant": consultant,
        "name": "Cal <b>Back</b>",
        "contact": "+82 10 1234 5678",
        "reason": "Pension",
        **fields,
    }


async def desk_callbacks(desk, count: int) -> list[dict]:
    callbacks = None
    while callbacks is None or len(callbacks) != count:
        callbacks = (await receive_type(desk, "queue"))["callbacks"]
    return callbacks


async def test_a_callback_shows_on_that_desk_only_and_done_removes_it(floor):
    ada, grace = await desk_socket("ada"), await desk_socket("grace")
    caller = await caller_socket()
    await caller.send_json_to(callback_frame())
    assert await receive_type(caller, "callback_noted") == {"type": "callback_noted"}

    [entry] = await desk_callbacks(ada, 1)
    assert entry["name"] == "Cal <b>Back</b>"
    assert (entry["contact"], entry["reason"]) == ("+82 10 1234 5678", "Pension")
    # Grace's desk hears nothing of it, and cannot clear it.
    await grace.send_json_to({"type": "callback_done", "callback": entry["callback"]})
    await expect_error(grace, "callback_gone")

    await ada.send_json_to({"type": "callback_done", "callback": entry["callback"]})
    assert await desk_callbacks(ada, 0) == []
    assert await Callback.objects.acount() == 0
    for socket in (ada, grace, caller):
        await socket.disconnect()


async def test_an_offline_consultant_can_be_asked_for_a_callback(floor):
    await sync_to_async(make_consultant)("off", presence="offline")
    caller = await caller_socket()
    await caller.send_json_to(callback_frame(consultant="off"))
    await receive_type(caller, "callback_noted")
    assert await Callback.objects.filter(consultant__slug="off").aexists()
    await caller.disconnect()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"contact": "12"}, "bad_message"),
        ({"contact": "x" * 121}, "bad_message"),
        ({"name": ""}, "bad_message"),
        ({"consultant": "nobody"}, "unknown_consultant"),
    ],
    ids=["short contact", "long contact", "no name", "unknown consultant"],
)
async def test_bad_callbacks_are_refused_and_store_nothing(floor, fields, code):
    caller = await caller_socket()
    await caller.send_json_to(callback_frame(**fields))
    await expect_error(caller, code)
    assert await Callback.objects.acount() == 0
    await caller.disconnect()
