"""The events log says who did what and when, never what was said; metrics count."""

import json
import logging

import pytest
from asgiref.sync import sync_to_async

from consult.logs import JsonFormatter
from signaling.metrics import ERRORS, RELAYED
from tests.factories import ANSWER, OFFER, make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type

pytestmark = pytest.mark.django_db(transaction=True)

CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.44 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


async def a_call(name: str):
    await sync_to_async(make_consultant)("ada")
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(
        {
            "type": "join",
            "consultant": "ada",
            "name": name,
            "reason": "my private reason",
            "offer": {"type": "offer", "sdp": OFFER},
        }
    )
    await receive_type(caller, "queued")
    await caller.send_json_to({"type": "ice", "candidate": CANDIDATE})
    # Frames are handled in order: the pong means the candidate is stored.
    await caller.send_json_to({"type": "ping"})
    await receive_type(caller, "pong")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    await desk.send_json_to(
        {"type": "answer", "answer": {"type": "answer", "sdp": ANSWER}}
    )
    await receive_type(caller, "accepted")
    return caller, desk


async def test_events_name_who_and_what_but_never_sdp_candidates_or_names(caplog):
    caplog.set_level(logging.INFO, logger="consult.events")

    caller, desk = await a_call("Bo Secretname")
    await caller.send_json_to({"type": "hangup"})
    await receive_type(desk, "hangup")
    await caller.disconnect()
    await desk.disconnect()

    lines = [
        JsonFormatter().format(r) for r in caplog.records if r.name == "consult.events"
    ]
    events = [json.loads(line) for line in lines]
    kinds = [e["event"] for e in events]
    assert {"socket.open", "caller.join", "consultant.accept", "caller.hangup"} <= set(
        kinds
    )
    assert "socket.close" in kinds
    join = next(e for e in events if e["event"] == "caller.join")
    assert join["consultant"] == "ada" and join["role"] == "caller"
    assert "time" in join and join["channel"]
    text = "\n".join(lines)
    for secret in ("v=0", "192.0.2.44", "Secretname", "my private reason"):
        assert secret not in text


async def test_error_frames_and_relays_are_counted():
    errors_before = ERRORS.labels("not_queued")._value.get()
    relays_before = RELAYED.labels("accepted")._value.get()
    caller = await caller_socket()

    await caller.send_json_to({"type": "cancel"})
    await receive_type(caller, "error")
    _, desk = await a_call("Bo")

    assert ERRORS.labels("not_queued")._value.get() == errors_before + 1
    assert RELAYED.labels("accepted")._value.get() == relays_before + 1
    await caller.disconnect()
    await desk.disconnect()
