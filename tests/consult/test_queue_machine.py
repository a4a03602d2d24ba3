"""Whatever callers and desks do, in any order, straight on the services: the
queue keeps its rules, and no frame reaches anyone but a party of the ticket or
call concerned."""

import inspect
import itertools
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
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
from consult.events import Released, SendFrame
from consult.models import Consultant, Consultation, DeskSocket, ServerProcess, Ticket
from consult.selectors import ticket_position
from tests.factories import OFFER, make_consultant

pytestmark = pytest.mark.django_db(transaction=True)

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
            if isinstance(event, SendFrame | Released):
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
            self.tokens.append(result.value.queued["token"])

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
            assert result.value.ticket.caller_channel != channel  # the row as it was
            assert (
                Ticket.objects.get(pk=result.value.ticket.pk).caller_channel == channel
            )

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
            if isinstance(event, SendFrame | Released):
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
            tells = [e for e in result.events if isinstance(e, SendFrame)]
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
