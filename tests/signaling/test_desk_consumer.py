"""`/ws/desk/` as the contract states it: auth, queue, accept, refuse, resume."""

import pytest
from asgiref.sync import sync_to_async

from consult.models import Consultant, Ticket
from tests.factories import ANSWER, OFFER, make_consultant
from tests.signaling.conftest import (
    TIMEOUT,
    caller_socket,
    desk_socket,
    make_user,
    open_socket,
    receive_type,
    session_cookie,
)
from tests.signaling.test_caller_consumer import expect_error, join_frame, quiet_frames

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada", presence="offline")


async def test_anonymous_desk_is_closed_with_4401():
    communicator, connected, _ = await open_socket("/ws/desk/")
    assert connected  # accepted, so that the close code reaches the client
    closed = await communicator.receive_output(TIMEOUT)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)


async def test_logged_in_non_consultant_desk_is_closed_with_4403(transactional_db):
    await sync_to_async(make_user)("visitor")
    cookie = await sync_to_async(session_cookie)("visitor")
    communicator, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    assert connected
    closed = await communicator.receive_output(TIMEOUT)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4403)


async def test_foreign_origin_is_refused_at_the_handshake(ada):
    cookie = await sync_to_async(session_cookie)("ada")
    for path in ("/ws/desk/", "/ws/call/"):
        _, connected, _ = await open_socket(
            path, cookie=cookie, origin=(b"origin", b"https://evil.example")
        )
        assert not connected
    assert (await Consultant.objects.aget()).presence == "offline"


async def test_opening_a_desk_says_hello_then_queue_and_goes_online(ada):
    caller = await caller_socket()
    cookie = await sync_to_async(session_cookie)("ada")
    desk, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    assert connected
    hello = await desk.receive_json_from(TIMEOUT)
    assert isinstance(hello.pop("ice_servers"), list)
    assert hello == {
        "type": "hello",
        "role": "consultant",
        "consultant": {"slug": "ada", "name": "Ada"},
        "status": "online",
        "queue_message": "",
        "connect_seconds": 10,
    }
    assert (await desk.receive_json_from(TIMEOUT)) == {
        "type": "queue",
        "callers": [],
        "callbacks": [],
    }
    lobby = await receive_type(caller, "consultants")
    assert lobby["consultants"][0]["status"] == "online"
    await caller.send_json_to(
        join_frame(name="<img src=x onerror=alert(1)>", reason="Tax")
    )
    await receive_type(caller, "queued")
    callers = []
    while not callers:
        callers = (await receive_type(desk, "queue"))["callers"]
    [entry] = callers
    assert set(entry) == {
        "ticket",
        "name",
        "reason",
        "audio_only",
        "connectivity",
        "waiting_seconds",
        "reconnecting",
        "came_from",
        "note",
    }
    assert (entry["name"], entry["reason"], entry["reconnecting"]) == (
        "<img src=x onerror=alert(1)>",
        "Tax",
        False,
    )
    await caller.disconnect()
    await desk.disconnect()


async def test_accept_errors_queue_empty_ticket_gone_and_busy(ada):
    await sync_to_async(make_consultant)("grace")
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "accept"})
    await expect_error(desk, "queue_empty")
    theirs = await caller_socket()
    await theirs.send_json_to(join_frame(consultant="grace"))
    foreign = await receive_type(theirs, "queued")
    await desk.send_json_to({"type": "accept", "ticket": foreign["ticket"]})
    await expect_error(desk, "ticket_gone")
    await desk.send_json_to(
        {"type": "refuse", "ticket": foreign["ticket"], "reason": "x"}
    )
    await expect_error(desk, "ticket_gone")
    assert (await Ticket.objects.aget(pk=foreign["ticket"])).state == "waiting"
    heard = {frame["type"] for frame in await quiet_frames(theirs)}
    assert "refused" not in heard

    first, second = await caller_socket(), await caller_socket()
    for communicator in (first, second):
        await communicator.send_json_to(join_frame())
        await receive_type(communicator, "queued")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    await desk.send_json_to({"type": "accept"})
    await expect_error(desk, "busy")
    for communicator in (theirs, first, second, desk):
        await communicator.disconnect()


async def test_accept_chosen_ticket_and_answer_tells_that_caller_only(ada):
    desk = await desk_socket("ada")
    first, chosen = await caller_socket(), await caller_socket()
    await first.send_json_to(join_frame(name="First"))
    await receive_type(first, "queued")
    await chosen.send_json_to(join_frame(name="Chosen", audio_only=True))
    ticket = (await receive_type(chosen, "queued"))["ticket"]
    await desk.send_json_to(
        {"type": "answer", "answer": {"type": "answer", "sdp": ANSWER}}
    )
    await expect_error(desk, "not_in_call")
    await desk.send_json_to({"type": "accept", "ticket": ticket})
    got = await receive_type(desk, "caller")
    assert (got["ticket"], got["name"], got["audio_only"]) == (ticket, "Chosen", True)
    assert got["offer"] == {"type": "offer", "sdp": OFFER} and got["candidates"] == []
    await desk.send_json_to(
        {"type": "answer", "answer": {"type": "answer", "sdp": ANSWER}}
    )
    assert (await receive_type(chosen, "accepted"))["answer"]["sdp"] == ANSWER
    await desk.send_json_to({"type": "hangup"})
    assert await receive_type(chosen, "hangup") == {
        "type": "hangup",
        "by": "consultant",
    }
    heard = {frame["type"] for frame in await quiet_frames(first)}
    assert not heard & {"accepted", "hangup", "answer", "ice"}
    await desk.send_json_to({"type": "hangup"})
    await expect_error(desk, "not_in_call")
    for communicator in (first, chosen, desk):
        await communicator.disconnect()


async def test_desk_reopened_mid_call_gets_resumed_after_queue(ada):
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame(name="Cy"))
    queued = await receive_type(caller, "queued")
    await desk.send_json_to({"type": "accept"})
    got = await receive_type(desk, "caller")
    await desk.disconnect()
    assert await receive_type(caller, "peer") == {
        "type": "peer",
        "state": "reconnecting",
    }

    cookie = await sync_to_async(session_cookie)("ada")
    again, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    assert connected
    assert (await again.receive_json_from(TIMEOUT))["status"] == "busy"
    assert (await again.receive_json_from(TIMEOUT))["type"] == "queue"
    assert await receive_type(again, "resumed") == {
        "type": "resumed",
        "consultation": got["consultation"],
        "caller": {"ticket": queued["ticket"], "name": "Cy"},
    }
    assert await receive_type(caller, "peer") == {"type": "peer", "state": "back"}
    restart = {"type": "offer", "sdp": OFFER}
    await again.send_json_to({"type": "offer", "offer": restart})
    assert (await receive_type(caller, "offer"))["offer"] == restart
    await caller.disconnect()
    await again.disconnect()


async def test_desk_gone_past_grace_goes_offline_and_caller_hears_hangup(ada, settings):
    settings.CONSULT_GRACE_SECONDS = 1
    settings.CONSULT_HEARTBEAT_SECONDS = 0.2
    desk = await desk_socket("ada")
    caller, waiting = await caller_socket(), await caller_socket()
    await caller.send_json_to(join_frame())
    await receive_type(caller, "queued")
    await waiting.send_json_to(join_frame(name="W"))
    await receive_type(waiting, "queued")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    await desk.disconnect()
    hangup = await receive_type(caller, "hangup", wait=5)
    assert hangup == {"type": "hangup", "by": "consultant", "reason": "disconnected"}
    refused = await receive_type(waiting, "refused", wait=5)
    assert refused["reason"]
    while True:
        lobby = await receive_type(waiting, "consultants", wait=5)
        if lobby["consultants"][0]["status"] == "offline":
            break
    await caller.disconnect()
    await waiting.disconnect()


async def test_a_call_moves_to_another_open_desk_when_its_desk_closes(ada):
    desk = await desk_socket("ada")
    other_tab = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame(name="Cy"))
    queued = await receive_type(caller, "queued")
    await desk.send_json_to({"type": "accept"})
    got = await receive_type(desk, "caller")
    await desk.disconnect()
    assert await receive_type(other_tab, "resumed") == {
        "type": "resumed",
        "consultation": got["consultation"],
        "caller": {"ticket": queued["ticket"], "name": "Cy"},
    }
    assert await receive_type(caller, "peer") == {
        "type": "peer",
        "state": "reconnecting",
    }
    assert await receive_type(caller, "peer") == {"type": "peer", "state": "back"}
    await other_tab.send_json_to({"type": "hangup"})
    assert (await receive_type(caller, "hangup"))["by"] == "consultant"
    await caller.disconnect()
    await other_tab.disconnect()


async def test_a_status_change_pushes_queue_to_every_desk_tab(ada):
    """docs/protocol.md 5.2: `status` has no direct reply; desks get `queue`."""
    first, second = await desk_socket("ada"), await desk_socket("ada")
    # Past the coalescing window: what the openings pushed is over.
    await quiet_frames(first, quiet=1.5)
    await quiet_frames(second, quiet=1.5)
    await first.send_json_to({"type": "status", "status": "away"})
    for desk in (first, second):
        assert (await receive_type(desk, "queue"))["callers"] == []
    await first.disconnect()
    await second.disconnect()
