"""Whatever a client sends, over many random cases, a socket is never closed
with 1011 and nothing is logged as an error: malformed frames get `error`, a
flood gets 4429. (The queue's own rules: tests/consult/test_queue_machine.py.)
"""

import json
import logging

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, example, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from consult.models import Consultation, Ticket
from signaling.messages import CALLER, CONSULTANT, MAX_FRAME_BYTES
from tests.factories import ANSWER, OFFER, join, make_consultant
from tests.signaling.conftest import TIMEOUT, open_socket, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

CODES = {
    "bad_message",
    "unknown_consultant",
    "consultant_unavailable",
    "already_queued",
    "queue_full",
    "too_many_from_address",
    "taken_over",
    "bad_token",
    "not_queued",
    "not_in_call",
    "queue_empty",
    "ticket_gone",
    "busy",
    # Recording and feedback frames outside a call (docs/protocol.md 5.3, 5.4).
    "not_recording",
    "feedback_refused",
}
# Every frame the server may send a socket outside a call.
SERVER_TYPES = {
    "error",
    "pong",
    "queued",
    "cancelled",
    "consultants",
    "position",
    "queue",
    "caller",
    "accepted",
    "refused",
}
PING = json.dumps({"type": "ping"})
NUL_OFFER = {"type": "offer", "sdp": OFFER + "a=x:\x00\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}
# One well-formed frame of every type a role may send, to be spoilt.
TEMPLATES = {
    "caller": [
        {
            "type": "join",
            "consultant": "ada",
            "name": "Bo",
            "reason": "A question",
            "audio_only": False,
            "offer": {"type": "offer", "sdp": OFFER},
        },
        {"type": "resume", "token": "x" * 43},
        {"type": "ice", "candidate": CANDIDATE},
        {"type": "cancel"},
        {"type": "hangup"},
        {"type": "offer", "offer": {"type": "offer", "sdp": OFFER}},
        {"type": "answer", "answer": {"type": "answer", "sdp": ANSWER}},
    ],
    "consultant": [
        {"type": "status", "status": "away"},
        {"type": "accept", "ticket": "0b5dcf0e-8a47-4c4b-9f4e-25d5b8a37e77"},
        {"type": "refuse", "ticket": "0b5dcf0e-8a47-4c4b-9f4e-25d5b8a37e77"},
        {"type": "ice", "candidate": CANDIDATE},
        {"type": "hangup"},
        {"type": "offer", "offer": {"type": "offer", "sdp": OFFER}},
        {"type": "answer", "answer": {"type": "answer", "sdp": ANSWER}},
    ],
}
KNOWN_TYPES = sorted(set(CALLER) | set(CONSULTANT))

# Characters that trip storage and parsers, drawn more often than by chance:
# lone surrogates (a "\ud800" escape is valid JSON, and a browser's
# JSON.stringify writes one for a broken string), NUL, controls, separators.
ODD = st.sampled_from(["\ud800", "\udfff", "\x00", "\x1f", "\u2028", "\ufeff"])
any_character = st.characters(codec=None, exclude_categories=())
# Not st.text(alphabet), which would merge ODD into one uniform alphabet.
text = st.lists(any_character | ODD, max_size=30).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4)
    ),
    max_leaves=12,
)


def spoilt(template: dict, data) -> dict:
    """The template with one field, maybe nested, replaced by any JSON value."""
    frame = json.loads(json.dumps(template))
    target = frame
    while True:
        key = data.draw(st.sampled_from([*sorted(target), "extra"]))
        if isinstance(target.get(key), dict) and data.draw(st.booleans()):
            target = target[key]
            continue
        target[key] = data.draw(text | json_values)
        return frame


def string_paths(value, path=()):
    """Where a frame holds strings, nested ones included, its `type` left out."""
    if isinstance(value, str) and path != ("type",):
        yield path
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from string_paths(inner, (*path, key))


@st.composite
def odd_strings(draw, role: str):
    """(frame, None): a well-formed frame with odd text put into one of its
    strings (after "v=0" in an SDP), which may or may not still be valid."""
    with_text = [t for t in TEMPLATES[role] if any(string_paths(t))]
    frame = json.loads(json.dumps(draw(st.sampled_from(with_text))))
    *parents, key = draw(st.sampled_from(list(string_paths(frame))))
    target = frame
    for parent in parents:
        target = target[parent]
    value = target[key]
    at = draw(st.integers(min(3, len(value)), len(value)))
    target[key] = value[:at] + draw(text) + value[at:]
    return json.dumps(frame), None


def ping_padded_to(size: int, pad: str) -> str:
    head = json.dumps({"type": "ping", "pad": ""})
    count = (size - len(head.encode())) // len(pad.encode())
    return json.dumps({"type": "ping", "pad": pad * max(count, 0)}, ensure_ascii=False)


@st.composite
def frames(draw, role: str):
    """(frame, malformed): malformed is True when the contract says `bad_message`."""
    kind = draw(
        st.sampled_from(
            ["spoilt", "known", "json", "text", "bytes", "oversized", "deep"]
        )
    )
    if kind == "spoilt":
        template = draw(st.sampled_from(TEMPLATES[role]))
        return json.dumps(spoilt(template, draw(st.data()))), None
    if kind == "known":
        fields = draw(st.dictionaries(text, json_values, max_size=4))
        type_ = draw(st.sampled_from([*KNOWN_TYPES, "", "PING", "teleport"]))
        malformed = type_ not in (CALLER if role == "caller" else CONSULTANT)
        return json.dumps({**fields, "type": type_}), malformed or None
    if kind == "json":
        value = draw(json_values)
        is_message = isinstance(value, dict) and isinstance(value.get("type"), str)
        return json.dumps(value), None if is_message else True
    if kind == "text":
        raw = draw(st.text(max_size=200))
        try:
            json.loads(raw)
        except ValueError:
            return raw, True
        return raw, None
    if kind == "bytes":
        return draw(st.binary(max_size=200) | st.just(PING.encode())), True
    if kind == "oversized":
        size = draw(st.integers(MAX_FRAME_BYTES - 64, MAX_FRAME_BYTES + 4096))
        frame = ping_padded_to(size, draw(st.sampled_from(["x", "\u2603"])))
        return frame, True if len(frame.encode()) > MAX_FRAME_BYTES else None
    depth = draw(st.integers(50, 30_000))
    return '{"type": "ping", "x": ' + "[" * depth + "]" * depth + "}", None


def is_ping(frame) -> bool:
    if not isinstance(frame, str) or len(frame.encode()) > MAX_FRAME_BYTES:
        return False
    try:
        value = json.loads(frame)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and value.get("type") == "ping"


async def send_raw(communicator, frame: str | bytes) -> None:
    # Not `send_to`, which refuses empty frames; a client may send them.
    kind = "bytes" if isinstance(frame, bytes) else "text"
    await communicator.send_input({"type": "websocket.receive", kind: frame})


async def answers_to(communicator, frame) -> list[dict]:
    """Send `frame`, then a ping: what came back before that ping's pong.

    A close at any point fails the test: no frame here may close the socket.
    """
    await send_raw(communicator, frame)
    await communicator.send_to(text_data=PING)
    pongs = 2 if is_ping(frame) else 1
    answers = []
    while True:
        output = await communicator.receive_output(TIMEOUT)
        assert output["type"] == "websocket.send", output
        answer = json.loads(output["text"])
        if answer == {"type": "pong"}:
            pongs -= 1
            if not pongs:
                return answers
        answers.append(answer)


def check_answers(answers: list[dict], malformed: bool | None) -> None:
    assert {a["type"] for a in answers} <= SERVER_TYPES, answers
    errors = [a for a in answers if a["type"] == "error"]
    assert {e["code"] for e in errors} <= CODES, errors
    assert all(isinstance(e["message"], str) for e in errors)
    if malformed:
        assert [e["code"] for e in errors] == ["bad_message"], answers


def errors_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@sync_to_async
def reset_queue(consultant, waiting: int) -> None:
    """No tickets or calls left by an earlier example, then `waiting` callers."""
    Consultation.objects.all().delete()
    Ticket.objects.all().delete()
    for number in range(waiting):
        join(consultant, f"waiting-caller-{number}")


async def new_example(caplog, consultant, waiting: int = 0) -> None:
    caplog.clear()
    caplog.set_level(logging.ERROR)
    await reset_queue(consultant, waiting)


@pytest.fixture
def ada(transactional_db):
    return make_consultant("ada", presence="online")


@pytest.fixture
async def desk_cookie(ada):
    return await sync_to_async(session_cookie)("ada")


GARBAGE = examples(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@GARBAGE
@given(sent=st.lists(frames("caller") | odd_strings("caller"), min_size=1, max_size=4))
@example(sent=[(json.dumps({**TEMPLATES["caller"][0], "name": "B\ud800o"}), True)])
@example(sent=[(json.dumps({**TEMPLATES["caller"][0], "offer": NUL_OFFER}), True)])
async def test_caller_socket_survives_any_frames(ada, caplog, sent):
    await new_example(caplog, ada)
    communicator, connected, _ = await open_socket("/ws/call/")
    assert connected
    assert (await communicator.receive_json_from(TIMEOUT))["type"] == "hello"
    for frame, malformed in sent:
        check_answers(await answers_to(communicator, frame), malformed)
    await communicator.disconnect()
    assert errors_logged(caplog) == []


@GARBAGE
@given(
    sent=st.lists(
        frames("consultant") | odd_strings("consultant"), min_size=1, max_size=4
    )
)
async def test_desk_socket_survives_any_frames(ada, desk_cookie, caplog, sent):
    await new_example(caplog, ada, waiting=1)
    communicator, connected, _ = await open_socket("/ws/desk/", cookie=desk_cookie)
    assert connected
    assert (await communicator.receive_json_from(TIMEOUT))["type"] == "hello"
    assert (await communicator.receive_json_from(TIMEOUT))["type"] == "queue"
    for frame, malformed in sent:
        check_answers(await answers_to(communicator, frame), malformed)
    await communicator.disconnect()
    assert errors_logged(caplog) == []


BURST = 5


@examples(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sent=st.lists(frames("caller"), min_size=BURST + 1, max_size=3 * BURST))
async def test_a_burst_beyond_the_rate_limit_closes_with_4429(
    ada, caplog, settings, sent
):
    settings.CONSULT_RATE_BURST = BURST
    settings.CONSULT_RATE_PER_SECOND = 0.01
    await new_example(caplog, ada)
    communicator, connected, _ = await open_socket("/ws/call/")
    assert connected
    await communicator.receive_json_from(TIMEOUT)
    for frame, _ in sent:
        await send_raw(communicator, frame)
    answers = []
    while (output := await communicator.receive_output(TIMEOUT))["type"] != (
        "websocket.close"
    ):
        answers.append(json.loads(output["text"]))
    assert output["code"] == 4429
    assert {a["type"] for a in answers} <= SERVER_TYPES, answers
    await communicator.disconnect()
    assert errors_logged(caplog) == []
