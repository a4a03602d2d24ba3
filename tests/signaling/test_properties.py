"""Properties over many random cases.

- Whatever a client sends, a socket is never closed with 1011 and nothing is
  logged as an error: malformed frames get `error`, a flood gets 4429.
- Whatever callers and desks do, in any order, the queue keeps its rules and
  no frame reaches anyone but a party of the ticket or call concerned.
"""

import inspect
import itertools
import json
import logging
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from consult import selectors, services
from consult.errors import ConsultError
from consult.events import Released, Tell
from consult.models import Consultant, Consultation, DeskSocket, ServerProcess, Ticket
from consult.selectors import ticket_position
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
    "bad_token",
    "not_queued",
    "not_in_call",
    "queue_empty",
    "ticket_gone",
    "busy",
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


# --- Random sequences of joins, accepts, hang-ups and drops -------------------

LIVE = [Ticket.State.WAITING, Ticket.State.IN_CALL]


def parties(tickets) -> set[str]:
    """The sockets that may hear of these tickets: each one's caller, and the
    desks (any open one, or the one holding the call) of its consultant."""
    tickets = list(tickets.values_list("caller_channel", "consultant_id", "id"))
    channels = {caller for caller, _, _ in tickets}
    consultants = {consultant for _, consultant, _ in tickets}
    channels |= set(
        DeskSocket.objects.filter(consultant_id__in=consultants).values_list(
            "channel_name", flat=True
        )
    )
    channels |= set(
        Consultation.objects.filter(
            ticket_id__in=[pk for _, _, pk in tickets], outcome="active"
        ).values_list("consultant_channel", flat=True)
    )
    return channels - {""}


def ticket_state() -> dict:
    """Every ticket's state and sockets, to see what a step changed."""
    calls = {
        ticket: (outcome, desk)
        for ticket, outcome, desk in Consultation.objects.filter(
            ticket__isnull=False
        ).values_list("ticket_id", "outcome", "consultant_channel")
    }
    return {
        t.id: (t.state, t.caller_channel, t.dropped_at, calls.get(t.id))
        for t in Ticket.objects.all()
    }


def everything() -> tuple:
    return (
        ticket_state(),
        sorted(Consultation.objects.values_list("id", "outcome", "consultant_channel")),
        sorted(DeskSocket.objects.values_list("channel_name", flat=True)),
        sorted(Consultant.objects.values_list("id", "presence")),
    )


def someone_waits(machine) -> bool:
    return bool(machine.desks) and Ticket.objects.filter(state="waiting").exists()


def desk_in_call(machine) -> bool:
    return Consultation.objects.filter(
        outcome="active", consultant_channel__in=list(machine.desks)
    ).exists()


def caller_holds_ticket(machine) -> bool:
    return Ticket.objects.filter(
        state__in=LIVE, caller_channel__in=list(machine.callers)
    ).exists()


class QueueMachine(RuleBasedStateMachine):
    """Several callers and two consultants' desks doing anything in any order,
    straight on the services; the invariants hold after every step."""

    consultant_ids: tuple[int, int] = (0, 0)

    def __init__(self):
        super().__init__()
        Consultation.objects.all().delete()
        Ticket.objects.all().delete()
        DeskSocket.objects.all().delete()
        ServerProcess.objects.all().delete()
        Consultant.objects.update(presence="offline", desk_dropped_at=None)
        self.names = itertools.count()
        self.processes = [self.new_process(), self.new_process()]
        self.desks: dict[str, tuple[int, str]] = {}  # open desk -> consultant, process
        self.callers: dict[str, str] = {}  # open caller socket -> process
        self.tokens: list[str] = []

    def new_process(self) -> str:
        process = f"process-{next(self.names)}"
        services.process_heartbeat(process=process)
        return process

    def socket(self, data, sockets: dict) -> str:
        """Mostly a socket that holds a ticket or a call, so that steps go deep."""
        busy = set(
            Ticket.objects.filter(state__in=LIVE).values_list(
                "caller_channel", flat=True
            )
        ) | set(
            Consultation.objects.filter(outcome="active").values_list(
                "consultant_channel", flat=True
            )
        )
        pool = sorted(busy & sockets.keys()) or sorted(sockets)
        if data.draw(st.integers(0, 3)) == 0:
            pool = sorted(sockets)
        return data.draw(st.sampled_from(pool))

    def act(self, service, *, sender: str = "", allowed=frozenset(), **kwargs):
        """Run a service; an error must change nothing, and what it tells must
        reach only open sockets in `allowed`, never the sender."""
        before = everything()
        try:
            result = service(**kwargs)
        except ConsultError:
            assert everything() == before, f"{service.__name__} failed half-way"
            return None
        for event in result.events:
            if isinstance(event, Tell | Released):
                assert event.channel in allowed, (event, allowed)
                assert event.channel != sender, event
                assert event.channel in self.desks.keys() | self.callers.keys()
        return result

    def caller_parties(self, channel: str) -> set[str]:
        return parties(Ticket.objects.filter(caller_channel=channel, state__in=LIVE))

    def other_party(self, channel: str, party: str) -> set[str]:
        """The one socket a relay from `channel` may reach: the other party."""
        calls = Consultation.objects.filter(outcome="active")
        if party == "caller":
            calls = calls.filter(ticket__caller_channel=channel)
            others = calls.values_list("consultant_channel", flat=True)
        else:
            calls = calls.filter(consultant_channel=channel)
            others = calls.values_list("ticket__caller_channel", flat=True)
        return set(others) - {"", channel}

    def desk_parties(self, channel: str) -> set[str]:
        return parties(
            Ticket.objects.filter(
                consultation__consultant_channel=channel,
                consultation__outcome="active",
            )
        )

    # --- steps ------------------------------------------------------------------

    @rule(data=st.data())
    def step(self, data):
        """One action among those that make sense now, calls favoured by weight.

        One rule drawing its action, rather than a rule per action: Hypothesis
        would switch whole rules off per run, and few runs would reach a call.
        """
        names = [
            name
            for name, (when, _, weight) in ACTIONS.items()
            if when(self)
            for _ in range(weight)
        ]
        name = data.draw(st.sampled_from(names), label="action")
        _, arguments, _ = ACTIONS[name]
        kwargs = {
            arg: data.draw(strategy, label=arg) for arg, strategy in arguments.items()
        }
        action = getattr(self, name)
        if "data" in inspect.signature(action).parameters:
            kwargs["data"] = data
        action(**kwargs)

    @initialize()
    def both_consultants_in_a_call(self):
        """Each consultant starts in a call (with callers on either process),
        so that every history has two calls to keep apart."""
        for who in (0, 1):
            self.open_desk(who, who)
            caller = self.new_caller_joins(who, 1 - who)
            desk = next(
                c
                for c, (owner, _) in self.desks.items()
                if owner == self.consultant_ids[who]
            )
            self.accept_as(desk, None)
            self.desk_signal_from(desk, "answer")
            assert self.other_party(desk, "consultant") == {caller}

    # --- desks ------------------------------------------------------------------

    def open_desk(self, who, process):
        channel, consultant_id = f"desk-{next(self.names)}", self.consultant_ids[who]
        allowed = parties(
            Ticket.objects.filter(
                consultation__consultant_id=consultant_id,
                consultation__outcome="active",
            )
        )
        self.desks[channel] = (consultant_id, self.processes[process])
        self.act(
            services.desk_opened,
            sender=channel,
            allowed=allowed,
            consultant_id=consultant_id,
            channel=channel,
            process=self.processes[process],
        )

    def close_desk(self, data):
        channel = self.socket(data, self.desks)
        consultant_id, _ = self.desks.pop(channel)
        self.act(
            services.desk_closed,
            allowed=self.desk_parties(channel) - {channel},
            consultant_id=consultant_id,
            channel=channel,
        )

    def accept(self, data, pick):
        # Mostly a desk free to take a caller, so that both consultants get
        # into calls at once and relays have a stranger to leak to.
        free = set(
            Consultant.objects.filter(tickets__state="waiting")
            .exclude(consultations__outcome="active")
            .values_list("id", flat=True)
        )
        idle = {c: desk for c, desk in self.desks.items() if desk[0] in free}
        channel = self.socket(
            data, idle if idle and data.draw(st.booleans()) else self.desks
        )
        consultant_id, _ = self.desks[channel]
        self.accept_as(channel, self.pick_ticket(data, pick, consultant_id))

    def accept_as(self, channel, ticket_id):
        consultant_id, process = self.desks[channel]
        result = self.act(
            services.ticket_accept,
            consultant_id=consultant_id,
            channel=channel,
            process=process,
            ticket_id=ticket_id,
        )
        if result is not None:
            taken = Ticket.objects.get(pk=result.value["ticket"])
            assert taken.consultant_id == consultant_id
            assert result.value["offer"]["sdp"] == OFFER

    def refuse(self, data, pick):
        channel = self.socket(data, self.desks)
        consultant_id, _ = self.desks[channel]
        ticket_id = self.pick_ticket(data, pick, consultant_id) or str(uuid.uuid4())
        own = Ticket.objects.filter(pk=ticket_id, consultant_id=consultant_id)
        self.act(
            services.ticket_refuse,
            sender=channel,
            allowed=parties(own),
            consultant_id=consultant_id,
            ticket_id=ticket_id,
            reason="Not today",
        )

    def pick_ticket(self, data, pick, consultant_id) -> str | None:
        tickets = Ticket.objects.order_by("created_at", "id")
        if pick == "own":
            tickets = tickets.filter(consultant_id=consultant_id)
        elif pick == "foreign":
            tickets = tickets.exclude(consultant_id=consultant_id)
        ids = [str(pk) for pk in tickets.values_list("id", flat=True)]
        if pick == "next" or not ids:
            return None if pick == "next" else str(uuid.uuid4())
        return data.draw(st.sampled_from(ids))

    def desk_signal(self, data, kind):
        self.desk_signal_from(self.socket(data, self.desks), kind)

    def everyone_in_a_call_signals(self):
        """Both sides of every call relay at once: a leak between two calls
        shows only while two are going."""
        calls = Consultation.objects.filter(outcome="active").values_list(
            "consultant_channel", "ticket__caller_channel"
        )
        for desk, caller in calls:
            if desk in self.desks:
                self.desk_signal_from(desk, "ice")
            if caller in self.callers:
                self.caller_signal_from(caller, "offer")

    def desk_signal_from(self, channel, kind):
        allowed = self.desk_parties(channel) - {channel}
        other = self.other_party(channel, "consultant")
        payload = self.signal(kind)
        if kind == "answer":
            result = self.act(
                services.consultation_answer,
                sender=channel,
                allowed=allowed,
                channel=channel,
                answer=payload[kind],
            )
        else:
            result = self.act(
                services.consultation_relay,
                sender=channel,
                allowed=allowed,
                channel=channel,
                party="consultant",
                frame=payload,
            )
            self.relayed_exactly(result, payload, other)

    def desk_hangup(self, data):
        channel = self.socket(data, self.desks)
        self.act(
            services.consultation_end,
            sender=channel,
            allowed=self.desk_parties(channel) - {channel},
            channel=channel,
            party="consultant",
        )

    def set_status(self, data, status):
        consultant_id, _ = self.desks[self.socket(data, self.desks)]
        self.act(
            services.consultant_set_presence,
            consultant_id=consultant_id,
            presence=status,
        )

    # --- callers ----------------------------------------------------------------

    def new_caller_joins(self, who, process) -> str:
        channel = f"caller-{next(self.names)}"
        self.callers[channel] = self.processes[process]
        self.join(channel, who)
        return channel

    def caller_joins_again(self, data, who):
        self.join(self.socket(data, self.callers), who)

    def join(self, channel, who):
        consultant = Consultant.objects.get(pk=self.consultant_ids[who])
        result = self.act(
            services.ticket_create,
            sender=channel,
            consultant_slug=consultant.slug,
            caller_name=f"Caller {channel}",
            reason="",
            audio_only=False,
            offer=OFFER,
            channel=channel,
            process=self.callers[channel],
        )
        if result is not None:
            self.tokens.append(result.value[1]["token"])

    def caller_signal(self, data, kind):
        self.caller_signal_from(self.socket(data, self.callers), kind)

    def caller_signal_from(self, channel, kind):
        allowed = self.caller_parties(channel) - {channel}
        other = self.other_party(channel, "caller")
        payload = self.signal(kind)
        if kind == "ice":
            result = self.act(
                services.ticket_add_candidate,
                sender=channel,
                allowed=allowed,
                channel=channel,
                candidate=payload["candidate"],
            )
        else:
            result = self.act(
                services.consultation_relay,
                sender=channel,
                allowed=allowed,
                channel=channel,
                party="caller",
                frame=payload,
            )
        # A waiting caller's candidate is kept with the ticket: no other party.
        self.relayed_exactly(result, payload, other)

    def cancel(self, data):
        channel = self.socket(data, self.callers)
        self.act(services.ticket_cancel, sender=channel, channel=channel)

    def caller_hangup(self, data):
        channel = self.socket(data, self.callers)
        self.act(
            services.consultation_end,
            sender=channel,
            allowed=self.caller_parties(channel) - {channel},
            channel=channel,
            party="caller",
        )

    def caller_socket_drops(self, data):
        channel = self.socket(data, self.callers)
        allowed = self.caller_parties(channel) - {channel}
        del self.callers[channel]
        self.act(services.caller_dropped, allowed=allowed, channel=channel)

    def caller_resumes_on_a_new_socket(self, data, process):
        token = data.draw(st.sampled_from(self.tokens))
        channel = f"caller-{next(self.names)}"
        self.callers[channel] = self.processes[process]
        allowed = parties(Ticket.objects.filter(token_hash=services.token_hash(token)))
        result = self.act(
            services.ticket_resume,
            sender=channel,
            allowed=allowed,
            token=token,
            channel=channel,
            process=self.processes[process],
        )
        if result is not None:
            assert result.value[1].caller_channel != channel  # the row as it was
            assert Ticket.objects.get(pk=result.value[1].pk).caller_channel == channel

    # --- time and processes -----------------------------------------------------

    def grace_period_runs_out(self):
        self.sweep(timezone.now() + timedelta(seconds=GRACE_SECONDS + 1))

    def server_process_dies(self, which):
        dead = self.processes[which]
        ServerProcess.objects.filter(pk=dead).update(
            heartbeat_at=timezone.now() - timedelta(days=1)
        )
        lost = {c for c, (_, p) in self.desks.items() if p == dead}
        lost |= {c for c, p in self.callers.items() if p == dead}
        self.desks = {c: d for c, d in self.desks.items() if c not in lost}
        self.callers = {c: p for c, p in self.callers.items() if c not in lost}
        # The sweep may still tell a dead socket of a party (a caller on the
        # same dead process as its desk): wasted, but no stranger hears it.
        self.sweep(timezone.now(), lost=lost)
        self.processes[which] = self.new_process()

    def sweep(self, now, lost=frozenset()):
        """Sweep; what it tells goes only to parties of the tickets it changed."""
        live = Ticket.objects.filter(state__in=LIVE)
        snapshot = {t.pk: parties(Ticket.objects.filter(pk=t.pk)) for t in live}
        before = ticket_state()
        result = services.sweep(now=now)
        after = ticket_state()
        changed = [pk for pk in snapshot if before[pk] != after[pk]]
        allowed = set().union(*(snapshot[pk] for pk in changed))
        for event in result.events:
            if isinstance(event, Tell | Released):
                assert event.channel in allowed, (event, allowed)
                open_ = self.desks.keys() | self.callers.keys()
                assert event.channel in open_ | lost, event

    def signal(self, kind: str) -> dict:
        n = next(self.names)
        if kind == "ice":
            return {"type": "ice", "candidate": {"candidate": f"candidate:{n}"}}
        sdp = f"v=0\r\no=- {n} 1 IN IP4 127.0.0.1\r\n"
        return {"type": kind, kind: {"type": kind, "sdp": sdp}}

    def relayed_exactly(self, result, frame, other: set[str]):
        """A relay reaches the other party, if present, with the frame as sent."""
        if result is not None:
            tells = [e for e in result.events if isinstance(e, Tell)]
            sent = [(tell.channel, tell.frame) for tell in tells]
            assert sent == [(channel, frame) for channel in other], tells
            # Tagged with the call, so that a party drops stragglers of it.
            assert all(tell.call is not None for tell in tells), tells

    # --- invariants -------------------------------------------------------------

    @invariant()
    def positions_run_from_one_without_gaps(self):
        for consultant_id in self.consultant_ids:
            waiting = Ticket.objects.filter(
                consultant_id=consultant_id, state="waiting"
            )
            positions = {str(t.id): ticket_position(t)[0] for t in waiting}
            order = sorted(positions, key=positions.get)
            assert sorted(positions.values()) == list(range(1, len(positions) + 1))
            assert selectors.waiting_order(consultant_id) == order

    @invariant()
    def one_active_consultation_per_consultant_holding_a_ticket_in_call(self):
        active = Consultation.objects.filter(outcome="active")
        per_consultant = Counter(active.values_list("consultant_id", flat=True))
        assert set(per_consultant.values()) <= {1}
        in_call = Ticket.objects.filter(state="in_call")
        assert sorted(active.values_list("ticket_id", "consultant_id")) == sorted(
            in_call.values_list("id", "consultant_id")
        )

    @invariant()
    def signaling_is_erased_once_a_ticket_stops_waiting(self):
        for ticket in Ticket.objects.exclude(state="waiting"):
            assert (ticket.offer, ticket.candidates) == ("", [])
        for ticket in Ticket.objects.filter(state="ended"):
            assert ticket.caller_channel == ""
        for ticket in Ticket.objects.filter(state="waiting"):
            assert len(ticket.candidates) <= services.MAX_CANDIDATES

    @invariant()
    def the_database_names_only_open_sockets(self):
        callers = Ticket.objects.filter(state__in=LIVE).exclude(caller_channel="")
        channels = list(callers.values_list("caller_channel", flat=True))
        assert len(channels) == len(set(channels)), "a socket holds two tickets"
        assert set(channels) <= self.callers.keys()
        desks = dict(DeskSocket.objects.values_list("channel_name", "consultant_id"))
        assert desks == {c: owner for c, (owner, _) in self.desks.items()}
        for channel, consultant_id in (
            Consultation.objects.filter(outcome="active")
            .exclude(consultant_channel="")
            .values_list("consultant_channel", "consultant_id")
        ):
            assert desks.get(channel) == consultant_id


ONE_OF_TWO = st.integers(0, 1)
# What QueueMachine.step may do: name -> (when it makes sense, arguments, weight).
ACTIONS = {
    "open_desk": (
        lambda m: len(m.desks) < 4,
        {"who": ONE_OF_TWO, "process": ONE_OF_TWO},
        1,
    ),
    "close_desk": (lambda m: m.desks, {}, 1),
    "accept": (
        someone_waits,
        {"pick": st.sampled_from(["next", "next", "own", "foreign", "none"])},
        6,
    ),
    "refuse": (someone_waits, {"pick": st.sampled_from(["own", "foreign", "none"])}, 1),
    "desk_signal": (
        desk_in_call,
        {"kind": st.sampled_from(["answer", "ice", "offer"])},
        4,
    ),
    "desk_hangup": (desk_in_call, {}, 1),
    "everyone_in_a_call_signals": (desk_in_call, {}, 2),
    "set_status": (
        lambda m: m.desks,
        {"status": st.sampled_from(["online", "away"])},
        1,
    ),
    "new_caller_joins": (
        lambda m: len(m.callers) < 6,
        {"who": ONE_OF_TWO, "process": ONE_OF_TWO},
        3,
    ),
    "caller_joins_again": (lambda m: m.callers, {"who": ONE_OF_TWO}, 1),
    "caller_signal": (
        caller_holds_ticket,
        {"kind": st.sampled_from(["ice", "offer", "answer"])},
        4,
    ),
    "cancel": (caller_holds_ticket, {}, 1),
    "caller_hangup": (caller_holds_ticket, {}, 1),
    "caller_socket_drops": (lambda m: m.callers, {}, 1),
    "caller_resumes_on_a_new_socket": (lambda m: m.tokens, {"process": ONE_OF_TWO}, 1),
    "grace_period_runs_out": (lambda m: True, {}, 1),
    "server_process_dies": (lambda m: True, {"which": ONE_OF_TWO}, 1),
}
GRACE_SECONDS = 30


@pytest.mark.django_db
def test_random_queue_histories_keep_the_invariants(settings):
    settings.CONSULT_GRACE_SECONDS = GRACE_SECONDS
    # Only the process that a step kills is ever taken for dead.
    settings.CONSULT_PROCESS_TIMEOUT_SECONDS = 3600
    QueueMachine.consultant_ids = (
        make_consultant("ada", presence="offline").id,
        make_consultant("bob", presence="offline").id,
    )
    run_state_machine_as_test(
        QueueMachine,
        settings=examples(max_examples=12, stateful_step_count=50, deadline=None),
    )
