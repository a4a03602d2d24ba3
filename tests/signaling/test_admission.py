"""Admission control: a process whose event loop lags answers new joins and new
desks `try_later`, and keeps every call it has. The lag is real: the loop is
blocked with `time.sleep`, as a saturated process's own work would block it."""

import asyncio
import contextlib
import time

import pytest
from asgiref.sync import sync_to_async

from consult.models import Callback, Consultant, DeskSocket, Ticket
from signaling import runtime
from signaling.admission import Admission
from tests.factories import make_consultant
from tests.signaling.conftest import (
    TIMEOUT,
    caller_socket,
    desk_socket,
    open_socket,
    receive_type,
    session_cookie,
)
from tests.signaling.test_caller_consumer import call_between, ice, join_frame

# The production default; the suite turns admission off (tests/settings.py).
BOUND_MS = 20
# The loop is blocked this long, then free this long, again and again: lag
# well over the bound on average, with room for the test's own sockets.
BLOCK_SECONDS = 0.1
FREE_SECONDS = 0.03


@pytest.fixture(autouse=True)
def admission_on(settings):
    settings.CONSULT_ADMISSION_LAG_MS = BOUND_MS


async def hog():
    """Keep the loop busy, as a saturated process is, until cancelled."""
    while True:
        time.sleep(BLOCK_SECONDS)  # noqa: ASYNC251 (blocking the loop is the point)
        await asyncio.sleep(FREE_SECONDS)


async def wait_for(admission: Admission, refusing: bool, within: float = 3):
    async with asyncio.timeout(within):
        while True:
            if (admission.check() is not None) == refusing:
                return
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def lagging():
    """The process's loop lags for the block's duration: joins are refused."""
    admission = (await runtime.current()).admission
    task = asyncio.create_task(hog())
    try:
        await wait_for(admission, refusing=True)
        yield admission
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- the monitor --------------------------------------------------------------


async def test_a_blocked_loop_flips_check_to_a_retry_hint_and_back(settings):
    settings.CONSULT_ADMISSION_RETRY_SECONDS = 7
    admission = Admission()
    probe = asyncio.create_task(admission.run())
    await asyncio.sleep(0.3)
    assert admission.check() is None  # an idle loop keeps up

    blocker = asyncio.create_task(hog())
    await wait_for(admission, refusing=True)
    assert admission.check() == 7
    assert admission.lag_ms > BOUND_MS
    blocker.cancel()

    await wait_for(admission, refusing=False)
    assert admission.lag_ms < BOUND_MS / 2
    probe.cancel()


async def test_one_short_stall_does_not_refuse():
    admission = Admission()
    probe = asyncio.create_task(admission.run())
    await asyncio.sleep(0.2)
    # Twice the bound once: the average moves by under a third of it.
    time.sleep(2 * BOUND_MS / 1000)  # noqa: ASYNC251 (the stall is the point)
    for _ in range(10):
        await asyncio.sleep(0.05)
        assert admission.check() is None
    probe.cancel()


def test_between_half_the_bound_and_the_bound_it_keeps_what_it_was_doing():
    admission = Admission()
    for _ in range(30):
        admission.sample(0.8 * BOUND_MS / 1000)
    assert admission.check() is None  # under the bound: admitting
    for _ in range(30):
        admission.sample(5 * BOUND_MS / 1000)
    assert admission.check() is not None
    for _ in range(30):
        admission.sample(0.6 * BOUND_MS / 1000)
    assert admission.check() is not None  # over half the bound: still refusing
    for _ in range(30):
        admission.sample(0.1 * BOUND_MS / 1000)
    assert admission.check() is None


def test_a_zero_bound_turns_it_off(settings):
    settings.CONSULT_ADMISSION_LAG_MS = 0
    admission = Admission()
    for _ in range(30):
        admission.sample(1.0)
    assert admission.check() is None


# --- through the sockets -------------------------------------------------------


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada")


@pytest.mark.django_db(transaction=True)
async def test_a_join_while_lagging_gets_try_later_and_creates_no_ticket(ada):
    desk = await desk_socket("ada")
    caller = await caller_socket()
    async with lagging():
        await caller.send_json_to(join_frame())
        refused = await receive_type(caller, "error")
        await caller.send_json_to(
            {
                "type": "callback",
                "consultant": "ada",
                "name": "Bo",
                "contact": "bo@example.com",
            }
        )
        callback = await receive_type(caller, "error")

    assert refused["code"] == callback["code"] == "try_later"
    assert refused["retry_after"] == 5
    assert refused["message"]
    assert not await Ticket.objects.aexists()
    assert not await Callback.objects.aexists()
    # The socket stays open: once the loop keeps up, the same join goes ahead.
    await wait_for((await runtime.current()).admission, refusing=False)
    await caller.send_json_to(join_frame())
    assert (await receive_type(caller, "queued"))["position"] == 1
    for communicator in (caller, desk):
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_calls_already_set_up_keep_relaying_and_hang_up_while_lagging(ada):
    desk = await desk_socket("ada")
    caller, waiting = await caller_socket(), await caller_socket()
    got = await call_between(desk, caller)
    await waiting.send_json_to(join_frame(name="Waiting"))
    queued = await receive_type(waiting, "queued")
    await waiting.disconnect()

    async with lagging():
        await caller.send_json_to({"type": "ice", "candidate": ice(1)})
        assert (await receive_type(desk, "ice"))["candidate"] == ice(1)
        await desk.send_json_to({"type": "ice", "candidate": ice(2)})
        assert (await receive_type(caller, "ice"))["candidate"] == ice(2)
        await caller.send_json_to({"type": "ping"})
        await receive_type(caller, "pong")
        # A dropped waiting caller comes back to its place.
        again = await caller_socket()
        await again.send_json_to({"type": "resume", "token": queued["token"]})
        assert (await receive_type(again, "queued"))["ticket"] == queued["ticket"]
        await caller.send_json_to({"type": "hangup"})
        assert (await receive_type(desk, "hangup"))["by"] == "caller"
        # The open desk takes the next caller.
        await desk.send_json_to({"type": "accept"})
        assert (await receive_type(desk, "caller"))["ticket"] == queued["ticket"]

    assert got["consultation"]
    for communicator in (caller, again, desk):
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_desk_that_would_bring_its_consultant_online_gets_try_later(
    transactional_db,
):
    await sync_to_async(make_consultant)("ada", presence="offline")
    cookie = await sync_to_async(session_cookie)("ada")
    async with lagging():
        desk, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
        assert connected
        refused = await desk.receive_json_from(TIMEOUT)
        closed = await desk.receive_output(TIMEOUT)

    assert refused["type"] == "error"
    assert (refused["code"], refused["retry_after"]) == ("try_later", 5)
    assert closed == {"type": "websocket.close", "code": 4013}
    ada = await Consultant.objects.aget(slug="ada")
    assert (ada.presence, ada.desk_dropped_at) == ("offline", None)
    assert not await DeskSocket.objects.aexists()


@pytest.mark.django_db(transaction=True)
async def test_a_desk_coming_back_to_its_online_consultant_opens_while_lagging(ada):
    first = await desk_socket("ada")
    await first.disconnect()
    async with lagging():
        again = await desk_socket("ada")
    assert again.hello["status"] == "online"
    await again.disconnect()
