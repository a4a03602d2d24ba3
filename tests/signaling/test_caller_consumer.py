"""`/ws/call/` as the contract states it, through the routing over the channel layer."""

import json

import pytest
from asgiref.sync import sync_to_async

from consult.models import Consultation, Ticket
from tests.factories import ANSWER, OFFER, make_consultant
from tests.signaling.conftest import (
    TIMEOUT,
    caller_socket,
    desk_socket,
    open_socket,
    receive_type,
)

pytestmark = pytest.mark.django_db(transaction=True)

RELAYED = {"ice", "offer", "answer", "accepted", "caller", "hangup", "peer", "refused"}


def join_frame(consultant="ada", name="Bo", sdp=OFFER, **extra):
    return {
        "type": "join",
        "consultant": consultant,
        "name": name,
        "offer": {"type": "offer", "sdp": sdp},
        **extra,
    }


async def expect_error(communicator, code: str) -> dict:
    frame = await receive_type(communicator, "error")
    assert frame["code"] == code, frame
    assert frame["message"]
    return frame


async def quiet_frames(communicator, quiet: float = 0.6) -> list[dict]:
    """Everything that arrives until the socket has been quiet for `quiet` seconds."""
    frames = []
    while not await communicator.receive_nothing(timeout=quiet):
        frames.append(await communicator.receive_json_from(TIMEOUT))
    return frames


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada")


async def test_hello_lists_consultants_and_ice_servers(ada):
    await sync_to_async(make_consultant)("grace", presence="offline", title="x")
    communicator, connected, _ = await open_socket("/ws/call/")
    assert connected
    hello = await communicator.receive_json_from(TIMEOUT)
    assert hello["role"] == "caller"
    assert isinstance(hello["ice_servers"], list)
    assert hello["consultants"] == [
        {"slug": "ada", "name": "Ada", "status": "online", "queue_length": 0},
        {"slug": "grace", "name": "Grace", "status": "offline", "queue_length": 0},
    ]
    await communicator.disconnect()


async def test_join_answers_queued_with_ticket_token_position_and_eta(ada):
    caller = await caller_socket()
    await caller.send_json_to(join_frame(reason="Help", audio_only=True))
    queued = await receive_type(caller, "queued")
    assert set(queued) == {
        "type",
        "ticket",
        "token",
        "position",
        "eta_seconds",
        "wait_range",
        "consultant_message",
    }
    # Next, with the consultant free: any moment now.
    assert queued["position"] == 1 and queued["eta_seconds"] == 0
    assert queued["wait_range"] == {"low_seconds": 0, "high_seconds": 0}
    ticket = await Ticket.objects.aget(pk=queued["ticket"])
    assert (ticket.reason, ticket.audio_only, ticket.offer) == ("Help", True, OFFER)
    await caller.disconnect()


@pytest.mark.parametrize(
    ("slug", "code"),
    [("nobody", "unknown_consultant"), ("gone", "consultant_unavailable")],
)
async def test_join_errors_for_unknown_or_offline_consultant(ada, slug, code):
    await sync_to_async(make_consultant)("gone", presence="offline")
    caller = await caller_socket()
    await caller.send_json_to(join_frame(consultant=slug))
    await expect_error(caller, code)
    assert not await Ticket.objects.aexists()
    await caller.disconnect()


async def test_second_join_is_already_queued_and_full_queue_is_queue_full(ada):
    await sync_to_async(make_consultant)("tiny", max_queue=1)
    first, second = await caller_socket(), await caller_socket()
    await first.send_json_to(join_frame(consultant="tiny"))
    await receive_type(first, "queued")
    await first.send_json_to(join_frame(consultant="ada"))
    await expect_error(first, "already_queued")
    await second.send_json_to(join_frame(consultant="tiny"))
    await expect_error(second, "queue_full")
    assert await Ticket.objects.acount() == 1
    await first.disconnect()
    await second.disconnect()


async def test_malformed_frames_get_bad_message_and_change_nothing(ada):
    bad = [
        "not json",
        json.dumps([1, 2]),
        json.dumps({"type": "teleport"}),
        json.dumps({"type": "accept"}),  # a desk's message, not a caller's
        json.dumps(join_frame(name="")),
        json.dumps(join_frame(name=7)),
        json.dumps(join_frame(name="x" * 81)),
        json.dumps(join_frame(sdp="not sdp")),
        json.dumps(join_frame(audio_only="yes")),
        json.dumps({**join_frame(), "offer": {"type": "answer", "sdp": OFFER}}),
        json.dumps({"type": "resume", "token": 5}),
        json.dumps({"type": "ice", "candidate": {"candidate": 1}}),
        json.dumps(join_frame(reason="r" * 70_000)),
    ]
    bad.append(b"\x00\x01")
    # A socket may send only a burst of bad frames before it is closed.
    for start in range(0, len(bad), 7):
        caller = await caller_socket()
        for frame in bad[start : start + 7]:
            kind = "bytes_data" if isinstance(frame, bytes) else "text_data"
            await caller.send_to(**{kind: frame})
            await expect_error(caller, "bad_message")
    assert not await Ticket.objects.aexists()
    await caller.send_json_to({"type": "ping", "extra": "ignored"})
    assert (await receive_type(caller, "pong")) == {"type": "pong"}
    await caller.disconnect()


async def test_flooding_socket_is_closed_with_4429(ada, settings):
    settings.CONSULT_RATE_BURST = 5
    settings.CONSULT_RATE_PER_SECOND = 1
    caller = await caller_socket()
    for _ in range(10):
        await caller.send_json_to({"type": "ping"})
    frames = []
    while True:
        message = await caller.receive_output(TIMEOUT)
        if message["type"] == "websocket.close":
            assert message["code"] == 4429
            break
        frames.append(json.loads(message["text"]))
    assert [f["type"] for f in frames if f["type"] == "pong"] == ["pong"] * 5


async def test_endless_garbage_is_closed_with_4429(ada):
    caller = await caller_socket()
    for _ in range(12):
        await caller.send_to(text_data="garbage")
    codes = []
    while True:
        message = await caller.receive_output(TIMEOUT)
        if message["type"] == "websocket.close":
            assert message["code"] == 4429
            break
        codes.append(json.loads(message["text"])["code"])
    assert codes == ["bad_message"] * 10


async def test_cancel_answers_cancelled_and_leaves_the_queue(ada):
    caller = await caller_socket()
    await caller.send_json_to({"type": "cancel"})
    await expect_error(caller, "not_queued")
    await caller.send_json_to(join_frame())
    await receive_type(caller, "queued")
    await caller.send_json_to({"type": "cancel"})
    assert await receive_type(caller, "cancelled") == {"type": "cancelled"}
    record = await Consultation.objects.aget()
    assert record.outcome == "cancelled"
    await caller.disconnect()


async def test_ice_without_ticket_is_not_queued_and_hangup_offer_need_a_call(ada):
    caller = await caller_socket()
    await caller.send_json_to({"type": "ice", "candidate": {"candidate": ""}})
    await expect_error(caller, "not_queued")
    await caller.send_json_to(join_frame())
    await receive_type(caller, "queued")
    await caller.send_json_to({"type": "hangup"})
    await expect_error(caller, "not_in_call")
    await caller.send_json_to(
        {"type": "offer", "offer": {"type": "offer", "sdp": OFFER}}
    )
    await expect_error(caller, "not_in_call")
    await caller.send_json_to(
        {"type": "answer", "answer": {"type": "answer", "sdp": ANSWER}}
    )
    await expect_error(caller, "not_in_call")
    await caller.disconnect()


async def test_full_call_relays_byte_for_byte_and_only_between_the_parties(ada):
    desk = await desk_socket("ada")
    caller, bystander = await caller_socket(), await caller_socket()
    odd_sdp = OFFER + "a=x-note:Grüße \u2603 \t trailing  \r\n"
    await caller.send_json_to(join_frame(sdp=odd_sdp))
    await receive_type(caller, "queued")
    await bystander.send_json_to(join_frame(name="By"))
    await receive_type(bystander, "queued")
    early = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0"}
    end = {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}
    for candidate in (early, end):
        await caller.send_json_to({"type": "ice", "candidate": candidate})
    # Frames are handled in order: the pong means both candidates are stored.
    await caller.send_json_to({"type": "ping"})
    await receive_type(caller, "pong")

    await desk.send_json_to({"type": "accept"})
    got = await receive_type(desk, "caller")
    assert got["offer"] == {"type": "offer", "sdp": odd_sdp}
    assert got["candidates"] == [early, end]
    assert (got["name"], got["reason"], got["audio_only"]) == ("Bo", "", False)

    answer = {"type": "answer", "sdp": ANSWER + "a=x:\u00e9\r\n"}
    await desk.send_json_to({"type": "answer", "answer": answer})
    accepted = await receive_type(caller, "accepted")
    assert accepted == {
        "type": "accepted",
        "consultation": got["consultation"],
        "consultant": {"slug": "ada", "name": "Ada"},
        "answer": answer,
    }
    live = {"candidate": "candidate:2 1 udp 2 127.0.0.1 5001 typ host", "sdpMid": "0"}
    await caller.send_json_to({"type": "ice", "candidate": live})
    assert (await receive_type(desk, "ice"))["candidate"] == live
    await desk.send_json_to({"type": "ice", "candidate": live})
    assert (await receive_type(caller, "ice"))["candidate"] == live
    restart = {"type": "offer", "sdp": OFFER + "a=ice-options:trickle\r\n"}
    await caller.send_json_to({"type": "offer", "offer": restart})
    assert (await receive_type(desk, "offer"))["offer"] == restart
    await desk.send_json_to({"type": "answer", "answer": answer})
    assert (await receive_type(caller, "answer"))["answer"] == answer

    await caller.send_json_to({"type": "hangup"})
    assert await receive_type(desk, "hangup") == {"type": "hangup", "by": "caller"}
    heard = {frame["type"] for frame in await quiet_frames(bystander)}
    assert not heard & RELAYED, heard
    for communicator in (caller, bystander, desk):
        await communicator.disconnect()


async def test_second_caller_moves_from_position_two_to_one(ada):
    desk = await desk_socket("ada")
    first, second = await caller_socket(), await caller_socket()
    await first.send_json_to(join_frame(name="One"))
    await receive_type(first, "queued")
    await second.send_json_to(join_frame(name="Two"))
    assert (await receive_type(second, "queued"))["position"] == 2
    await desk.send_json_to({"type": "accept"})
    assert (await receive_type(desk, "caller"))["name"] == "One"
    position = await receive_type(second, "position")
    assert position["position"] == 1
    # Next, behind a call in progress, with no history to go by: not known.
    assert position["eta_seconds"] is None and position["wait_range"] is None
    for communicator in (first, second, desk):
        await communicator.disconnect()


async def test_refused_caller_hears_the_reason(ada):
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")
    await desk.send_json_to(
        {"type": "refuse", "ticket": queued["ticket"], "reason": "Booked"}
    )
    refused = await receive_type(caller, "refused")
    assert refused.pop("move_token")
    assert refused == {"type": "refused", "reason": "Booked"}
    await desk.send_json_to({"type": "refuse", "ticket": queued["ticket"]})
    await expect_error(desk, "ticket_gone")
    await caller.disconnect()
    await desk.disconnect()


async def test_lobby_hears_presence_changes(ada):
    caller = await caller_socket()
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "status", "status": "away"})
    while True:
        push = await receive_type(caller, "consultants")
        if push["consultants"][0]["status"] == "away":
            break
    await desk.send_json_to({"type": "status", "status": "busy"})
    await expect_error(desk, "bad_message")
    await caller.disconnect()
    await desk.disconnect()


async def test_a_socket_greeted_with_a_lobby_changed_since_gets_the_change(ada):
    watcher = await caller_socket()  # the hub has read the lobby once
    desk = await desk_socket("ada")
    await desk.send_json_to({"type": "status", "status": "away"})
    await desk.send_json_to({"type": "ping"})
    await receive_type(desk, "pong")  # the change is committed and published
    late, connected, _ = await open_socket("/ws/call/")
    assert connected
    hello = await late.receive_json_from(TIMEOUT)
    # In the hello, or in a push within the coalescing window.
    latest = hello["consultants"][0]["status"]
    while latest != "away":
        push = await receive_type(late, "consultants", wait=3)
        latest = push["consultants"][0]["status"]
    for communicator in (watcher, late, desk):
        await communicator.disconnect()


async def test_waiting_caller_resumes_with_its_place_after_a_drop(ada):
    desk = await desk_socket("ada")
    first, caller = await caller_socket(), await caller_socket()
    await first.send_json_to(join_frame(name="Ahead"))
    await receive_type(first, "queued")
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")
    await caller.disconnect()
    while True:
        callers = (await receive_type(desk, "queue"))["callers"]
        if len(callers) == 2 and callers[1]["reconnecting"]:
            break
    again = await caller_socket()
    await again.send_json_to({"type": "resume", "token": queued["token"]})
    resumed = await receive_type(again, "queued")
    assert (resumed["ticket"], resumed["position"]) == (queued["ticket"], 2)
    await again.send_json_to({"type": "resume", "token": "A" * 43})
    await expect_error(again, "bad_token")
    for communicator in (first, again, desk):
        await communicator.disconnect()


async def test_caller_in_a_call_drops_and_resumes_consultant_sees_peer_states(ada):
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")
    await desk.send_json_to({"type": "accept"})
    got = await receive_type(desk, "caller")
    await caller.disconnect()
    assert await receive_type(desk, "peer") == {"type": "peer", "state": "reconnecting"}
    again = await caller_socket()
    await again.send_json_to({"type": "resume", "token": queued["token"]})
    resumed = await receive_type(again, "resumed")
    assert resumed == {
        "type": "resumed",
        "consultation": got["consultation"],
        "consultant": {"slug": "ada", "name": "Ada"},
    }
    assert await receive_type(desk, "peer") == {"type": "peer", "state": "back"}
    restart = {"type": "offer", "sdp": OFFER}
    await again.send_json_to({"type": "offer", "offer": restart})
    assert (await receive_type(desk, "offer"))["offer"] == restart
    await again.disconnect()
    await desk.disconnect()


async def test_no_comeback_ends_the_call_as_disconnected(ada, settings):
    settings.CONSULT_GRACE_SECONDS = 1
    settings.CONSULT_HEARTBEAT_SECONDS = 0.2
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    await receive_type(caller, "queued")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    await caller.send_json_to({"type": "media", "state": "connected"})
    await caller.disconnect()
    await receive_type(desk, "peer")
    hangup = await receive_type(desk, "hangup", wait=5)
    assert hangup == {"type": "hangup", "by": "caller", "reason": "disconnected"}
    call = await Consultation.objects.aget()
    assert call.outcome == "disconnected"
    await desk.disconnect()


async def test_waiting_caller_without_comeback_leaves_the_queue(ada, settings):
    settings.CONSULT_GRACE_SECONDS = 1
    settings.CONSULT_HEARTBEAT_SECONDS = 0.2
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    await receive_type(caller, "queued")
    await caller.disconnect()
    callers = (await receive_type(desk, "queue"))["callers"]
    while not (callers and callers[0]["reconnecting"]):
        callers = (await receive_type(desk, "queue"))["callers"]
    while callers:  # the same state may be pushed again before the grace ends
        callers = (await receive_type(desk, "queue", wait=5))["callers"]
    assert (await Consultation.objects.aget()).outcome == "abandoned"
    await desk.disconnect()


async def test_resume_on_a_new_socket_takes_the_ticket_from_the_old_one(ada):
    old = await caller_socket()
    await old.send_json_to(join_frame())
    queued = await receive_type(old, "queued")
    new = await caller_socket()
    await new.send_json_to({"type": "resume", "token": queued["token"]})
    assert (await receive_type(new, "queued"))["ticket"] == queued["ticket"]
    await expect_error(old, "taken_over")
    await old.send_json_to({"type": "cancel"})
    await expect_error(old, "not_queued")
    await new.send_json_to({"type": "cancel"})
    await receive_type(new, "cancelled")
    for communicator in (old, new):
        await communicator.disconnect()


async def test_a_socket_holding_a_ticket_cannot_resume_another(ada):
    first, second = await caller_socket(), await caller_socket()
    await first.send_json_to(join_frame())
    token = (await receive_type(first, "queued"))["token"]
    await second.send_json_to(join_frame(name="Other"))
    await receive_type(second, "queued")
    await second.send_json_to({"type": "resume", "token": token})
    await expect_error(second, "already_queued")
    for communicator in (first, second):
        await communicator.disconnect()


async def call_between(desk, caller) -> dict:
    """Join, accept and answer: the desk's `caller` frame."""
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")
    await desk.send_json_to({"type": "accept"})
    got = await receive_type(desk, "caller")
    await desk.send_json_to({"type": "answer", "answer": ANSWER_FRAME})
    await receive_type(caller, "accepted")
    # As the browser does once ICE connects: the talk time starts.
    await caller.send_json_to({"type": "media", "state": "connected"})
    await caller.send_json_to({"type": "ping"})
    await receive_type(caller, "pong")  # frames are handled in order
    return {**got, "token": queued["token"]}


ANSWER_FRAME = {"type": "answer", "sdp": ANSWER}


def ice(n: int) -> dict:
    return {"candidate": f"candidate:{n} 1 udp 1 127.0.0.1 {5000 + n} typ host"}


async def test_relays_follow_a_caller_that_resumes_while_its_old_socket_is_open(ada):
    desk, old = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, old)
    # Both sides have relayed, so both know where the other is.
    await desk.send_json_to({"type": "ice", "candidate": ice(1)})
    assert (await receive_type(old, "ice"))["candidate"] == ice(1)
    await old.send_json_to({"type": "ice", "candidate": ice(2)})
    assert (await receive_type(desk, "ice"))["candidate"] == ice(2)

    new = await caller_socket()
    await new.send_json_to({"type": "resume", "token": got["token"]})
    await receive_type(new, "resumed")
    await expect_error(old, "taken_over")
    assert await receive_type(desk, "peer") == {"type": "peer", "state": "back"}
    await desk.send_json_to({"type": "ice", "candidate": ice(3)})
    assert (await receive_type(new, "ice"))["candidate"] == ice(3)
    await old.send_json_to({"type": "ice", "candidate": ice(4)})
    await expect_error(old, "not_queued")
    await new.send_json_to({"type": "ice", "candidate": ice(5)})
    assert (await receive_type(desk, "ice"))["candidate"] == ice(5)
    heard = {frame["type"] for frame in await quiet_frames(old)}
    assert not heard & RELAYED, heard
    for communicator in (old, new, desk):
        await communicator.disconnect()


async def test_a_desk_drops_late_frames_of_a_call_it_has_ended(ada):
    from channels.layers import get_channel_layer

    from consult.events import SendFrame
    from signaling.groups import relay_event

    desk, first = await desk_socket("ada"), await caller_socket()
    ended = await call_between(desk, first)
    desk_channel = await sync_to_async(
        lambda: Consultation.objects.get(pk=ended["consultation"]).consultant_channel
    )()
    await desk.send_json_to({"type": "hangup"})
    await receive_type(first, "hangup")

    second = await caller_socket()
    current = await call_between(desk, second)
    # What a caller of the ended call sent on its cached route before it heard
    # the hangup, arriving late.
    layer = get_channel_layer()
    straggler = {"type": "ice", "candidate": ice(1)}
    late = SendFrame(desk_channel, straggler, call=ended["consultation"])
    await layer.send(desk_channel, relay_event(late))
    await second.send_json_to({"type": "ice", "candidate": ice(2)})
    assert (await receive_type(desk, "ice"))["candidate"] == ice(2)
    heard = [f for f in await quiet_frames(desk) if f["type"] == "ice"]
    assert heard == [], heard
    assert current["consultation"] != ended["consultation"]
    for communicator in (first, second, desk):
        await communicator.disconnect()
