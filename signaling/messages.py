"""Turns a raw WebSocket frame into a checked message, or a coded `ProtocolError`.

Every frame a client may send is declared here, per role, with the kind and
bounds of each field. Fields a message does not declare are dropped, so nothing
undeclared ever reaches the domain or gets relayed.
"""

import json
import math
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_FRAME_BYTES = 64 * 1024
MAX_SDP_CHARS = 60_000
MAX_CANDIDATE_CHARS = 2_048


class ProtocolError(Exception):
    code = "bad_message"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Message:
    type: str
    fields: dict[str, Any]


Check = Callable[[Any, str], Any]
# Format characters (Unicode category Cf: zero-width spaces, word joiners,
# bidi marks, embeddings, overrides and isolates) make a name invisible or
# reorder the text around it. A few are part of spelling or emoji and stay:
# the zero-width (non-)joiner of Persian and Indic scripts and emoji
# sequences, and the tag characters of subdivision flags.
_FORMAT_ALLOWED = {"\u200c", "\u200d"} | {chr(c) for c in range(0xE0020, 0xE0080)}
# What a reader sees: letters, digits, punctuation and symbols, except the
# few of those that render blank (Hangul fillers, the braille blank).
_VISIBLE = frozenset("LNPS")
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,50}")
_TOKEN = re.compile(r"[-A-Za-z0-9_]{16,128}")
# A solved ALTCHA challenge, as its widget hands it over: base64 JSON.
_SOLUTION = re.compile(r"[A-Za-z0-9+/]{1,2000}={0,2}")
# JSON escapes ("\\u0000", "\\ud800") let these into any string; PostgreSQL
# stores neither, and a lone surrogate is not even UTF-8.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _fail(name: str, why: str):
    raise ProtocolError(f"{name}: {why}")


def _unprintable(value: str, allowed: str) -> bool:
    """Control, line-separator and format characters (see `_FORMAT_ALLOWED`)."""
    for ch in value:
        category = unicodedata.category(ch)
        if category in {"Cc", "Zl", "Zp"} and ch not in allowed:
            return True
        if category == "Cf" and ch not in _FORMAT_ALLOWED:
            return True
    return False


def _visible(value: str) -> bool:
    return any(
        unicodedata.category(ch)[0] in _VISIBLE and ch not in _BLANK for ch in value
    )


def text(low: int, high: int, *, multiline: bool = False) -> Check:
    """A string of `low` to `high` characters once stripped, free of control and
    format characters; a required one (`low` >= 1) must show at least one
    visible character."""
    allowed = "\n\t" if multiline else ""

    def check(value, name):
        if not isinstance(value, str):
            _fail(name, "must be a string")
        value = value.strip()
        if not low <= len(value) <= high:
            _fail(name, f"must be {low} to {high} characters")
        if _unprintable(value.replace("\r\n", "\n"), allowed):
            _fail(name, "must not hold control or invisible formatting characters")
        if low and not _visible(value):
            _fail(name, "must hold at least one visible character")
        return value

    return check


def pattern(regex: re.Pattern, what: str) -> Check:
    def check(value, name):
        if not isinstance(value, str) or not regex.fullmatch(value):
            _fail(name, f"must be {what}")
        return value

    return check


def boolean(value, name):
    if not isinstance(value, bool):
        _fail(name, "must be true or false")
    return value


def ticket_id(value, name):
    try:
        return str(uuid.UUID(value))
    except (TypeError, ValueError, AttributeError):
        _fail(name, "must be a ticket id (UUID)")


def record_id(value, name):
    """A database id: a positive integer (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        _fail(name, "must be a positive integer id")
    return value


def email(value, name):
    """An e-mail address as Django's EmailValidator accepts it, at most 254."""
    value = text(3, 254)(value, name)
    try:
        validate_email(value)
    except ValidationError:
        _fail(name, "must be an e-mail address")
    return value


def notify_place(value, name):
    """The place to be told at: 1 (next) or 2."""
    if isinstance(value, bool) or value not in (1, 2):
        _fail(name, "must be 1 or 2")
    return value


def rating(value, name):
    """A caller's rating of a call: a whole number 1 to 5."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        _fail(name, "must be a whole number from 1 to 5")
    return value


def one_of(*choices: str) -> Check:
    def check(value, name):
        if value not in choices:
            _fail(name, f"must be one of {', '.join(choices)}")
        return value

    return check


def description(kind: str) -> Check:
    """An RTCSessionDescriptionInit of the given type, its SDP kept byte for byte."""

    def check(value, name):
        if not isinstance(value, dict) or value.get("type") != kind:
            _fail(name, f'must be {{"type": "{kind}", "sdp": ...}}')
        sdp = value.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0"):
            _fail(name, "sdp must be a session description starting with v=0")
        if len(sdp) > MAX_SDP_CHARS:
            _fail(name, f"sdp must be at most {MAX_SDP_CHARS} characters")
        return {"type": kind, "sdp": sdp}

    return check


def candidate(value, name):
    """An RTCIceCandidateInit; an empty `candidate` is the end-of-candidates marker."""
    if not isinstance(value, dict) or not isinstance(value.get("candidate"), str):
        _fail(name, "must be an RTCIceCandidateInit with a candidate string")
    if len(value["candidate"]) > MAX_CANDIDATE_CHARS:
        _fail(name, "candidate is too long")
    clean = {"candidate": value["candidate"]}
    for key, kind, high in (
        ("sdpMid", str, 64),
        ("sdpMLineIndex", int, 255),
        ("usernameFragment", str, 256),
    ):
        if key not in value:
            continue
        field = clean[key] = value[key]
        if field is None:
            continue
        if kind is int and (isinstance(field, bool) or not isinstance(field, int)):
            _fail(name, f"{key} must be a whole number")
        if kind is int and not 0 <= field <= high:
            _fail(name, f"{key} is out of range")
        if kind is str and (not isinstance(field, str) or len(field) > high):
            _fail(name, f"{key} must be a short string")
    return clean


def measure(high: float) -> Check:
    """A finite number, clamped into 0..`high`: a browser's figure may overshoot
    (a stall makes a huge RTT), but nothing out of physical range is kept."""

    def check(value, name):
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(name, "must be a number")
        if not math.isfinite(value):
            _fail(name, "must be a finite number")
        return min(max(float(value), 0.0), high)

    return check


class OptionalField:
    """A field that may be missing (or null), with the value used then."""

    def __init__(self, check: Check, default: Any = None):
        self.check, self.default = check, default


NAME = text(1, 80)
# Word from the consultant to their queue: one short line or two.
QUEUE_MESSAGE_MAX = 280
REASON = text(0, 500, multiline=True)
# A phone number or an e-mail address, for a callback.
CONTACT = text(3, 120)

# A call-quality summary (docs/protocol.md, `stats`): each figure optional,
# clamped to what a real connection can show.
STATS = {
    "rtt": OptionalField(measure(60_000)),
    "loss": OptionalField(measure(100)),
    "jitter": OptionalField(measure(60_000)),
    "in": OptionalField(measure(100_000)),
    "out": OptionalField(measure(100_000)),
    "fps": OptionalField(measure(240)),
    "frames": OptionalField(measure(2**31)),
    "cand": OptionalField(one_of("host", "srflx", "prflx", "relay"), ""),
    "proto": OptionalField(one_of("udp", "tcp", "tls"), ""),
}
# Frames whose whole text must be smaller than MAX_FRAME_BYTES.
MAX_BYTES = {"stats": 512}
# The pre-call check's verdict, and the watchdog's rungs in order
# (consult.models.Connectivity and WatchdogStep).
CONNECTIVITY = ("direct", "relay", "blocked")
WATCHDOG_STEPS = ("ice-restart", "relay", "audio-only", "callback")

_COMMON = {
    "ping": {},
    "stats": STATS,
    "media": {"state": one_of("connected")},
    "ice": {"candidate": candidate},
    "offer": {"offer": description("offer")},
    "answer": {"answer": description("answer")},
    "hangup": {},
    # Either party stops the recording of the call (docs/recording.md).
    "record_stop": {},
    # What this side sends, for the other page to show (docs/connectivity.md).
    "tracks": {
        "muted": boolean,
        "camera_off": boolean,
        "audio_only": OptionalField(boolean, False),
    },
    # A rung of the watchdog's ladder taken, or media back after it.
    "watchdog": {
        "step": one_of(*WATCHDOG_STEPS),
        "recovered": OptionalField(boolean, False),
    },
}

CALLER = _COMMON | {
    "join": {
        "consultant": pattern(_SLUG, "a consultant's slug"),
        "name": NAME,
        "reason": OptionalField(REASON, ""),
        "audio_only": OptionalField(boolean, False),
        # The pre-call check's class; missing when the check had not finished.
        "connectivity": OptionalField(one_of(*CONNECTIVITY), ""),
        "offer": description("offer"),
        # The solution to `challenge_required` (docs/protocol.md: join limits).
        "altcha": OptionalField(pattern(_SOLUTION, "an ALTCHA solution"), ""),
        # From `refused`: carry the refused ticket's join time to this queue.
        "move_token": OptionalField(pattern(_TOKEN, "a move token"), ""),
    },
    "resume": {"token": pattern(_TOKEN, "a resume token")},
    "callback": {
        "consultant": pattern(_SLUG, "a consultant's slug"),
        "name": NAME,
        "contact": CONTACT,
        "reason": OptionalField(REASON, ""),
    },
    "notify": {"email": email, "place": notify_place},
    "cancel": {},
    # The answer to `still_there`.
    "here": {},
    # The answer to `record_ask`.
    "record_consent": {"recording": record_id, "accept": boolean},
    # After the call (docs/protocol.md, feedback).
    "feedback": {
        "consultation": record_id,
        "rating": rating,
        "comment": OptionalField(text(0, 500, multiline=True), ""),
    },
}

CONSULTANT = _COMMON | {
    "record_request": {},
    "status": {"status": one_of("online", "away")},
    "accept": {"ticket": OptionalField(ticket_id)},
    "refuse": {"ticket": ticket_id, "reason": OptionalField(REASON, "")},
    "queue_message": {"text": text(0, QUEUE_MESSAGE_MAX, multiline=True)},
    "callback_done": {"callback": record_id},
    "flag": {
        "consultation": record_id,
        "flag": one_of("audio", "video", "dropped", "other"),
    },
    "transfer_call": {
        "to": pattern(_SLUG, "a consultant's slug"),
        "note": OptionalField(text(0, QUEUE_MESSAGE_MAX, multiline=True), ""),
    },
    "transfer": {
        "ticket": ticket_id,
        "to": pattern(_SLUG, "a consultant's slug"),
        "note": OptionalField(text(0, QUEUE_MESSAGE_MAX, multiline=True), ""),
    },
}

ROLES = {"caller": CALLER, "consultant": CONSULTANT}


def _unstorable(data) -> bool:
    """Whether any key or string in `data` holds a character in `_UNSTORABLE`."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def parse(raw: str | bytes | None, role: str) -> Message:
    """Check one frame from a client of `role` ("caller" or "consultant")."""
    if not isinstance(raw, str):
        raise ProtocolError("frames must be JSON text")
    if len(raw) > MAX_FRAME_BYTES or len(raw.encode()) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frames must be at most {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ProtocolError("frames must be JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError('a frame must be an object with a string "type"')
    spec = ROLES[role].get(data["type"])
    if spec is None:
        raise ProtocolError(f"unknown type {data['type'][:40]!r} for a {role}")
    limit = MAX_BYTES.get(data["type"])
    if limit is not None and len(raw.encode()) > limit:
        raise ProtocolError(f"{data['type']} frames must be at most {limit} bytes")
    fields = {}
    for name, check in spec.items():
        value = data.get(name)
        if isinstance(check, OptionalField):
            fields[name] = check.default if value is None else check.check(value, name)
        elif name not in data:
            _fail(name, "is required")
        else:
            fields[name] = check(value, name)
    # Only what is kept or relayed must be storable; ignored fields may hold anything.
    if _unstorable(fields):
        raise ProtocolError("strings must not hold NUL or lone surrogates")
    return Message(data["type"], fields)
