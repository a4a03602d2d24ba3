"""Frame checks: what passes, cleaned, and what is refused with `bad_message`."""

import json

import pytest

from signaling.messages import MAX_FRAME_BYTES, ProtocolError, parse
from tests.factories import OFFER


def frame(**fields) -> str:
    return json.dumps(fields)


def test_join_is_cleaned_and_undeclared_fields_dropped():
    message = parse(
        frame(
            type="join",
            consultant="ada",
            name="  Bo  ",
            offer={"type": "offer", "sdp": OFFER, "extra": 1},
            channel="specific.someone-else",
        ),
        "caller",
    )
    assert message.type == "join"
    assert message.fields == {
        "consultant": "ada",
        "name": "Bo",
        "reason": "",
        "audio_only": False,
        "connectivity": "",
        "offer": {"type": "offer", "sdp": OFFER},
        "altcha": "",
        "move_token": "",
    }


def test_reason_may_span_lines_but_a_name_may_not():
    reason = parse(
        frame(
            type="refuse",
            ticket="6f1c7a36-0a7e-4a53-9f0e-5a0d1c3b2a10",
            reason="a\r\nb",
        ),
        "consultant",
    )
    assert reason.fields["reason"] == "a\r\nb"
    with pytest.raises(ProtocolError):
        parse(frame(type="join", consultant="ada", name="a\nb", offer=OFFER), "caller")


@pytest.mark.parametrize(
    "name",
    [
        *["", " ", "x" * 81, "a\tb", "nul\x00", "rtl\u202eevil", "line\u2028sep"],
        # Invisible or reordering: zero-width space, BOM, word joiner, the
        # Arabic letter mark, a bidi isolate, a soft hyphen alone.
        *["\u200b\u200b", "\ufeff", "\u2060", "Bo\u061c", "\u2067Bo", "\u00ad"],
        # No visible character at all: a combining mark alone, a joiner alone,
        # letters and symbols that render blank (Hangul filler, braille blank).
        *["\u0301", "\u200d", "\u3164", "\u2800\u2800", "\uffa0"],
        *[5, None],
    ],
)
def test_bad_names_are_refused(name):
    with pytest.raises(ProtocolError) as error:
        parse(
            frame(
                type="join",
                consultant="ada",
                name=name,
                offer={"type": "offer", "sdp": OFFER},
            ),
            "caller",
        )
    assert error.value.code == "bad_message"


def test_names_with_emoji_and_accents_pass():
    message = parse(
        frame(
            type="join",
            consultant="ada",
            name="Zoë 👩‍👩‍👧",
            offer={"type": "offer", "sdp": OFFER},
        ),
        "caller",
    )
    assert message.fields["name"] == "Zoë 👩‍👩‍👧"


def test_candidate_keeps_only_the_init_fields_and_allows_end_of_candidates():
    message = parse(
        frame(
            type="ice",
            candidate={"candidate": "", "sdpMid": None, "sdpMLineIndex": 0, "x": 1},
        ),
        "caller",
    )
    assert message.fields["candidate"] == {
        "candidate": "",
        "sdpMid": None,
        "sdpMLineIndex": 0,
    }


@pytest.mark.parametrize(
    "candidate",
    [
        "candidate:1",
        {"sdpMid": "0"},
        {"candidate": "c", "sdpMLineIndex": True},
        {"candidate": "c", "sdpMLineIndex": 999},
        {"candidate": "c" * 3000},
        {"candidate": "c", "sdpMid": 0},
    ],
)
def test_bad_candidates_are_refused(candidate):
    with pytest.raises(ProtocolError):
        parse(frame(type="ice", candidate=candidate), "caller")


def test_roles_have_their_own_messages():
    with pytest.raises(ProtocolError):
        parse(frame(type="accept"), "caller")
    with pytest.raises(ProtocolError):
        parse(frame(type="join"), "consultant")
    assert parse(frame(type="accept"), "consultant").fields == {"ticket": None}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"{}",
        "[]",
        "{",
        '{"type": 1}',
        '"type"',
        "{}",
        json.dumps({"type": "ping", "pad": "x" * MAX_FRAME_BYTES}),
        "[" * 100_000,
    ],
)
def test_malformed_frames_are_refused(raw):
    with pytest.raises(ProtocolError):
        parse(raw, "caller")


def test_sdp_must_look_like_sdp_and_match_its_type():
    for offer in (
        {"type": "offer", "sdp": "hello"},
        {"type": "answer", "sdp": OFFER},
        {"type": "offer", "sdp": "v=0" + "x" * 70_000},
        {"type": "offer"},
    ):
        with pytest.raises(ProtocolError):
            parse(frame(type="offer", offer=offer), "caller")


def test_status_and_ticket_ids_are_checked():
    with pytest.raises(ProtocolError):
        parse(frame(type="status", status="busy"), "consultant")
    with pytest.raises(ProtocolError):
        parse(frame(type="refuse", ticket="../../etc"), "consultant")
    ticket = "6F1C7A36-0A7E-4A53-9F0E-5A0D1C3B2A10"
    accepted = parse(frame(type="accept", ticket=ticket), "consultant")
    assert accepted.fields["ticket"] == ticket.lower()


@pytest.mark.parametrize(
    "name",
    [
        "مریم\u200cجان",  # noqa: RUF001
        "محمد علي",
        "שרה",
        "김민지",
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    ],
)
def test_names_in_every_script_pass_with_the_joiners_they_need(name):
    message = parse(
        frame(
            type="join",
            consultant="ada",
            name=name,
            offer={"type": "offer", "sdp": OFFER},
        ),
        "caller",
    )
    assert message.fields["name"] == name


def test_join_carries_the_pre_call_check_class_and_nothing_else():
    join = {"type": "join", "consultant": "ada", "name": "Bo", "offer": OFFER}
    offer = {"type": "offer", "sdp": OFFER}
    message = parse(
        json.dumps({**join, "offer": offer, "connectivity": "relay"}), "caller"
    )
    assert message.fields["connectivity"] == "relay"
    for bad in ("fast", "", 1, ["relay"]):
        with pytest.raises(ProtocolError, match="connectivity"):
            parse(json.dumps({**join, "offer": offer, "connectivity": bad}), "caller")


@pytest.mark.parametrize("role", ["caller", "consultant"])
def test_tracks_and_watchdog_frames_are_checked(role):
    tracks = parse(frame(type="tracks", muted=True, camera_off=False), role)
    assert tracks.fields == {"muted": True, "camera_off": False, "audio_only": False}
    step = parse(frame(type="watchdog", step="audio-only"), role)
    assert step.fields == {"step": "audio-only", "recovered": False}
    for bad in (
        frame(type="tracks", muted="yes", camera_off=False),
        frame(type="tracks", camera_off=False),
        frame(type="watchdog", step="reboot"),
        frame(type="watchdog", step="relay", recovered="true"),
    ):
        with pytest.raises(ProtocolError):
            parse(bad, role)
