"""Whatever callers, desks and operators do, in any order, straight on the
services, while database connections are lost and processes die or pause: the
queue keeps its rules, no frame reaches anyone but a party of the ticket or
call concerned, and once everything settles nothing is held by a gone socket."""

import contextlib
import copy
import inspect
import itertools
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError, transaction
from django.utils import timezone
from hypothesis import event as note
from hypothesis import settings as examples
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from consult import selectors, services
from consult.database import DatabaseUnavailable, database_call
from consult.errors import ConsultError
from consult.events import DesksRevoked, Released, SendFrame
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


def call_parties() -> dict[int, set[str]]:
    """Each active call's two sockets, the only ones that may hear of it."""
    calls = Consultation.objects.filter(outcome="active").values_list(
        "id", "ticket__caller_channel", "consultant_channel"
    )
    return {pk: {caller, desk} - {""} for pk, caller, desk in calls}


# What a consumer calls when its socket is gone (`departure()`); its failure is
# left to the process's repair pass (`Runtime.settle_later`), not closed 4013.
DEPARTURES = (services.caller_dropped, services.desk_closed)
# What the admin and the identity signal handlers call: synchronously in the
# request, not through `database_call`, so a lost connection is not retried.
IN_A_REQUEST = (
    services.consultation_end_by_operator,
    services.ticket_remove,
    services.consultant_leave,
)


@dataclass(frozen=True)
class Fault:
    """The database connection is lost in the middle of the next service call.

    `database_call` retries once; `retry_fails`: the retry meets the outage
    too (`DatabaseUnavailable`), and the socket is closed with 4013 (try again);
    `departure_fails`: so does its departure in `disconnect()`, which the
    process's repair pass settles later; `next_read_fails`: the service
    commits, but the read that follows it in the handler fails (the desk's
    `desk_state` after `desk_opened`).
    """

    retry_fails: bool = False
    departure_fails: bool = False
    next_read_fails: bool = False


def flaky(service, failures: int):
    """`service`, whose first `failures` runs lose the connection right after
    the service ran, so that its writes roll back."""

    def run(**kwargs):
        nonlocal failures
        with transaction.atomic():
            result = service(**kwargs)
            if failures:
                failures -= 1
                raise OperationalError("server closed the connection unexpectedly")
        return result

    run.__name__ = service.__name__
    return run


class Rollback(Exception):
    """Undo a look into the future (see `QueueMachine.quiesce`)."""


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
        # Closed sockets the database may still name: their departure met an
        # outage, or their process went silent -> process, consultant (desks).
        self.gone: dict[str, tuple[str, int | None]] = {}
        # Per live process, the departures its repair pass is to settle, in
        # order: the gone socket, and when it left (the grace counts from then).
        self.unsettled: defaultdict[str, list] = defaultdict(list)
        self.silent: set[str] = set()  # processes that stopped beating, not yet swept
        # Processes that stopped beating -> their sockets then (-> consultant).
        self.asleep: dict[str, dict[str, int | None]] = {}
        self.fault: Fault | None = None  # for the next service call

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

    def act(
        self,
        service,
        *,
        sender: str = "",
        allowed=frozenset(),
        revoked: tuple[int, int] | None = None,
        **kwargs,
    ):
        """Run a service; an error must change nothing, and what it tells must
        reach only open sockets in `allowed`, never the sender.

        Sockets that are gone but still named by the database may hear it too
        (wasted, as for a dead process's sockets). A frame of a call reaches a
        party of that call only; a `DesksRevoked` only the consultant `revoked`
        (with its code). With a `Fault` armed, the call loses its connection:
        see `call` and `closed_to_retry`.
        """
        before = everything()
        calls = call_parties()
        fault, self.fault = self.fault, None
        try:
            result = self.call(service, fault, kwargs)
        except ConsultError:
            assert everything() == before, f"{service.__name__} failed half-way"
            return None
        except (DatabaseUnavailable, OperationalError) as error:
            if fault is None:
                raise  # a real database error: not part of the model
            assert everything() == before, f"{service.__name__} was not rolled back"
            # Through `database_call`: a retry, then `DatabaseUnavailable`.
            retried = isinstance(error, DatabaseUnavailable) and fault.retry_fails
            assert retried or service in IN_A_REQUEST, (service.__name__, error)
            if service in DEPARTURES:
                raise  # for `run_departure`: settled later
            socket = sender or kwargs.get("channel", "")
            if socket in self.desks.keys() | self.callers.keys():
                self.closed_to_retry(socket, fault)
            return None  # a request (admin, logout) just failed
        for event in result.events:
            if isinstance(event, SendFrame | Released):
                assert event.channel in allowed, (event, allowed)
                assert event.channel != sender, event
                open_ = self.desks.keys() | self.callers.keys() | self.gone.keys()
                assert event.channel in open_
            if isinstance(event, SendFrame) and event.call is not None:
                assert event.channel in calls.get(event.call, ()), (event, calls)
            if isinstance(event, DesksRevoked):
                assert (event.consultant_id, event.code) == revoked, event
        if fault and fault.next_read_fails and service is services.desk_opened:
            self.closed_to_retry(kwargs["channel"], fault)
        return result

    def call(self, service, fault: Fault | None, kwargs: dict):
        """The service as its caller runs it, through a lost connection if `fault`:
        a consumer's through the app's `database_call` (a retry, then
        `DatabaseUnavailable`), a request's once (`OperationalError`)."""
        if fault is None:
            return service(**kwargs)
        if service in IN_A_REQUEST:
            tally("fault: a request fails")
            return flaky(service, 1)(**kwargs)
        failures = 2 if fault.retry_fails else 1
        if fault.next_read_fails and service is services.desk_opened:
            failures = 0
        tally(f"fault: {service.__name__} fails {failures} times")
        return async_to_sync(database_call(flaky(service, failures)))(**kwargs)

    @contextlib.contextmanager
    def connection_lost(self, fault: Fault):
        """Arm `fault` for the next service call made inside the block."""
        self.fault = fault
        try:
            yield
        finally:
            self.fault = None

    def closed_to_retry(self, channel: str, fault: Fault):
        """The consumer closes with 4013 (`close_to_retry`); its `disconnect()`
        runs the departure, which meets the outage too if `departure_fails`."""
        tally("socket closed with 4013")
        self.fault = Fault(retry_fails=True) if fault.departure_fails else None
        self.depart(channel)

    def departure(self, channel: str, consultant_id: int | None):
        """What a gone socket's consumer runs (`departure()`), and who may hear."""
        if consultant_id is None:
            allowed = self.caller_parties(channel) - {channel}
            return services.caller_dropped, {"channel": channel}, allowed
        allowed = self.desk_parties(channel) - {channel}
        kwargs = {"consultant_id": consultant_id, "channel": channel}
        return services.desk_closed, kwargs, allowed

    def depart(self, channel: str):
        """The socket closed: `disconnect()` runs its departure now or, while the
        database is out, leaves it to its process's repair pass (`settle_later`)."""
        if channel in self.desks:
            consultant_id, process = self.desks.pop(channel)
        else:
            consultant_id, process = None, self.callers.pop(channel)
        self.gone[channel] = (process, consultant_id)
        left_at = timezone.now()
        if not self.run_departure(channel):
            tally("departure left to the repair pass")
            self.unsettled[process].append((channel, left_at))

    def run_departure(self, channel: str, at: datetime | None = None) -> bool:
        _, consultant_id = self.gone[channel]
        service, kwargs, allowed = self.departure(channel, consultant_id)
        if at is not None:
            kwargs["at"] = at  # `settle_later(..., at=left_at)`
        try:
            self.act(service, allowed=allowed, **kwargs)
        except DatabaseUnavailable:
            return False
        del self.gone[channel]
        return True

    def settle(self, process: str, fails_at: int | None = None) -> bool:
        """The process's repair pass runs the departures that met an outage, in
        order, up to one that fails again (`Runtime.settle`); False then."""
        pending, self.unsettled[process] = self.unsettled[process], []
        for index, (channel, left_at) in enumerate(pending):
            if index == fails_at:
                self.fault = Fault(retry_fails=True)
            if not self.run_departure(channel, at=left_at):
                self.unsettled[process][:0] = pending[index:]
                return False
        return True

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
        self.run_action(data, ACTIONS)

    def run_action(self, data, actions: dict):
        sensible = {}  # several actions share a `when`: ask the database once
        for when, _, _ in actions.values():
            if when not in sensible:
                sensible[when] = bool(when(self))
        names = [
            name
            for name, (when, _, weight) in actions.items()
            if sensible[when]
            for _ in range(weight)
        ]
        name = data.draw(st.sampled_from(names), label="action")
        tally(f"action: {name}")
        _, arguments, _ = actions[name]
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
        result = self.act(
            services.desk_opened,
            sender=channel,
            allowed=allowed,
            consultant_id=consultant_id,
            channel=channel,
            process=self.processes[process],
        )
        return channel, result

    def close_desk(self, data):
        # `depart` runs desk_closed; only the parties of its call may hear.
        self.depart(self.socket(data, self.desks))

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

    def media_connected(self, data):
        """A browser of a call reports media flowing (`on_media`)."""
        sides = [(c, "consultant") for c in sorted(self.desks)]
        sides += [(c, "caller") for c in sorted(self.callers)]
        held = set().union(*call_parties().values())
        pool = [side for side in sides if side[0] in held] or sides
        channel, party = data.draw(st.sampled_from(pool))
        result = self.act(
            services.consultation_media_connected,
            sender=channel,
            channel=channel,
            party=party,
        )
        if result is not None:
            assert result.events == []  # nobody hears of it
            held = Consultation.objects.filter(outcome="active")
            if party == "caller":
                held = held.filter(ticket__caller_channel=channel)
            else:
                held = held.filter(consultant_channel=channel)
            assert held.get().media_connected_at is not None

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
        channel = self.socket(data, self.desks)
        consultant_id, _ = self.desks[channel]
        self.act(
            services.consultant_set_presence,
            sender=channel,
            consultant_id=consultant_id,
            presence=status,
        )

    def desk_taken_over(self, data, process):
        holders = Consultation.objects.filter(
            outcome="active", consultant_channel__in=list(self.desks)
        ).values_list("consultant_id", flat=True)
        self.take_over(data.draw(st.sampled_from(sorted(holders))), process)

    def take_over(self, consultant_id, process):
        """A desk opens in another tab while an older one holds the call: the new
        one takes it, and the old one hears `Released`, closes with 4409 and
        stays closed (`DeskConsumer.socket_released`)."""
        old = Consultation.objects.get(consultant_id=consultant_id, outcome="active")
        who = self.consultant_ids.index(consultant_id)
        channel, result = self.open_desk(who, process)
        if result is None:
            return  # closed with 4013 before it took anything
        released = [e.channel for e in result.events if isinstance(e, Released)]
        assert released == [old.consultant_channel], result.events
        if old.consultant_channel in self.desks:
            self.depart(old.consultant_channel)
        if channel in self.desks:
            held = Consultation.objects.get(pk=old.pk)
            assert (held.outcome, held.consultant_channel) == ("active", channel)

    # --- operators and identity -------------------------------------------------

    def operator_ends_call(self, data):
        ids = Consultation.objects.order_by("id").values_list("id", flat=True)
        pool = sorted(call_parties()) if data.draw(st.integers(0, 3)) else []
        pool = pool or list(ids) or [0]
        self.operator_ends(data.draw(st.sampled_from(pool)))

    def operator_ends(self, consultation_id):
        """An operator ends a call from the admin: both parties, and nobody
        else, hear `hangup` by the operator."""
        told = call_parties().get(consultation_id, set())
        result = self.act(
            services.consultation_end_by_operator,
            allowed=told,
            consultation_id=consultation_id,
        )
        if result is not None:
            hangups = [
                (e.channel, e.frame["type"], e.frame["by"])
                for e in result.events
                if isinstance(e, SendFrame)
            ]
            assert sorted(hangups) == sorted((c, "hangup", "operator") for c in told)
            ended = Consultation.objects.get(pk=consultation_id)
            outcome = "completed" if ended.media_connected_at else "failed"
            assert (ended.outcome, ended.ended_by) == (outcome, "operator")

    def operator_removes_ticket(self, data):
        # In order of creation: ids are random, and replays must pick the same.
        tickets = Ticket.objects.order_by("created_at", "id")
        waiting = tickets.filter(state="waiting").values_list("id", flat=True)
        ids = tickets.values_list("id", flat=True)
        pool = list(map(str, waiting)) if data.draw(st.integers(0, 3)) else []
        pool = pool or list(map(str, ids)) or [str(uuid.uuid4())]
        self.operator_removes(data.draw(st.sampled_from(pool)))

    def operator_removes(self, ticket_id):
        """An operator removes a waiting caller: they alone hear `refused`."""
        waiting = Ticket.objects.filter(pk=ticket_id, state="waiting")
        told = set(waiting.values_list("caller_channel", flat=True)) - {""}
        result = self.act(services.ticket_remove, allowed=told, ticket_id=ticket_id)
        if result is not None:
            tells = [e for e in result.events if isinstance(e, SendFrame)]
            frames = [(e.channel, e.frame["type"]) for e in tells]
            assert frames == [(c, "refused") for c in told]

    def consultant_leaves(self, who, code):
        self.leave(self.consultant_ids[who], code)

    def leave(self, consultant_id, code):
        """Logout, a new password or deactivation (consult/signals.py): only this
        consultant's desks are revoked, with `code`, and close; only their
        callers hear (`hangup`, `refused`); nothing of theirs stays live."""
        callers = Ticket.objects.filter(consultant_id=consultant_id, state__in=LIVE)
        told = set(callers.values_list("caller_channel", flat=True)) - {""}
        result = self.act(
            services.consultant_leave,
            allowed=told,
            revoked=(consultant_id, code),
            consultant_id=consultant_id,
            code=code,
        )
        if result is None:
            return  # the request failed and rolled back: the desks stay open
        revoked = [e for e in result.events if isinstance(e, DesksRevoked)]
        assert revoked == [DesksRevoked(consultant_id, code)]
        for channel, (owner, _) in list(self.desks.items()):
            if owner == consultant_id:
                self.depart(channel)  # `desks_revoked` closes it with `code`
        assert Consultant.objects.get(pk=consultant_id).presence == "offline"
        assert not callers.exists()

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
        # `depart` runs caller_dropped; only the parties of its ticket may hear.
        self.depart(self.socket(data, self.callers))

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

    # --- database faults ----------------------------------------------------------

    def database_fails(self, data, retry_fails, departure_fails, next_read_fails):
        """Some socket's (or an operator's) action loses its database connection
        in the middle of its service call."""
        fault = Fault(retry_fails, departure_fails, next_read_fails)
        with self.connection_lost(fault):
            self.run_action(data, FAULTABLE)

    def repair_pass(self, data):
        """One process's repair pass: first the departures that met an outage, in
        order, then the sweep, which waits while the database is still out."""
        pending = sorted(p for p in self.processes if self.unsettled[p])
        process = data.draw(st.sampled_from(pending))
        count = len(self.unsettled[process])
        fails_at = data.draw(st.none() | st.integers(0, count - 1))
        if self.settle(process, fails_at):
            self.sweep(timezone.now())

    # --- time and processes -----------------------------------------------------

    def grace_period_runs_out(self):
        # Each live process's repair passes settled its departures meanwhile.
        for process in self.processes:
            assert self.settle(process)
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
        # Its unsettled departures die with it; the sweep drops those sockets.
        self.unsettled.pop(dead, None)
        lost |= {c for c, (p, _) in self.gone.items() if p == dead}
        self.gone = {c: g for c, g in self.gone.items() if c not in lost}
        # The sweep may still tell a dead socket of a party (a caller on the
        # same dead process as its desk): wasted, but no stranger hears it.
        self.sweep(timezone.now(), lost=lost)
        self.processes[which] = self.new_process()

    def server_process_goes_silent(self, which):
        """A process dies without a word: its sockets are gone at once, but the
        others take it for dead only once its heartbeat is older than the
        process timeout; meanwhile the database still names its sockets."""
        dead = self.processes[which]
        for channel, (consultant_id, process) in list(self.desks.items()):
            if process == dead:
                del self.desks[channel]
                self.gone[channel] = (dead, consultant_id)
        for channel, process in list(self.callers.items()):
            if process == dead:
                del self.callers[channel]
                self.gone[channel] = (dead, None)
        self.unsettled.pop(dead, None)  # its memory died with it
        self.silent.add(dead)
        self.asleep[dead] = {c: g[1] for c, g in self.gone.items() if g[0] == dead}
        self.processes[which] = self.new_process()

    def process_timeout_passes(self):
        """The silent processes' heartbeats grow older than the process timeout
        (shorter than the grace in production) while the live ones beat on."""
        now = timezone.now()
        ServerProcess.objects.filter(pk__in=self.silent).update(
            heartbeat_at=now - timedelta(seconds=PROCESS_TIMEOUT_SECONDS + 1)
        )
        lost = {c for c, (p, _) in self.gone.items() if p in self.silent}
        self.sweep(now, lost=lost)
        swept = self.silent - live_processes()
        self.gone = {c: g for c, g in self.gone.items() if g[0] not in swept}
        self.silent -= swept

    def swept_process_wakes(self, data):
        """A process that was only paused, and was taken for dead meanwhile,
        wakes: its heartbeat finds its row swept, so it closes every socket of
        its own with 4013 (`Runtime.beat`); their departures run."""
        self.wake(data.draw(st.sampled_from(sorted(self.asleep.keys() - self.silent))))

    def wake(self, process):
        assert services.process_heartbeat(process=process) is False
        for channel, consultant_id in self.asleep.pop(process).items():
            self.gone[channel] = (process, consultant_id)
            assert self.run_departure(channel)

    def sweep(self, now, lost=frozenset()):
        """Sweep; what it tells goes only to parties of the tickets it changed."""
        live = Ticket.objects.filter(state__in=LIVE)
        snapshot = {t.pk: parties(Ticket.objects.filter(pk=t.pk)) for t in live}
        # A pass may move a call to another desk of its consultant, then end it.
        calls = Consultation.objects.filter(outcome="active")
        call_tickets = dict(calls.values_list("id", "ticket_id"))
        before = ticket_state()
        result = services.sweep(now=now)
        after = ticket_state()
        changed = [pk for pk in snapshot if before[pk] != after[pk]]
        allowed = set().union(*(snapshot[pk] for pk in changed))
        for event in result.events:
            if isinstance(event, SendFrame | Released):
                assert event.channel in allowed, (event, allowed)
                open_ = self.desks.keys() | self.callers.keys() | self.gone.keys()
                assert event.channel in open_ | lost, event
            if isinstance(event, SendFrame) and event.call is not None:
                told = snapshot.get(call_tickets.get(event.call), ())
                assert event.channel in told, (event, told)
            assert not isinstance(event, DesksRevoked), event

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
        """... or gone ones whose departure has not run yet (see `gone`)."""
        callers = Ticket.objects.filter(state__in=LIVE).exclude(caller_channel="")
        channels = list(callers.values_list("caller_channel", flat=True))
        assert len(channels) == len(set(channels)), "a socket holds two tickets"
        assert set(channels) <= self.callers.keys() | self.gone.keys()
        desks = dict(DeskSocket.objects.values_list("channel_name", "consultant_id"))
        open_rows = {c: owner for c, owner in desks.items() if c not in self.gone}
        assert open_rows == {c: owner for c, (owner, _) in self.desks.items()}
        for channel in desks.keys() & self.gone.keys():
            assert desks[channel] == self.gone[channel][1]
        for channel, consultant_id in (
            Consultation.objects.filter(outcome="active")
            .exclude(consultant_channel="")
            .values_list("consultant_channel", "consultant_id")
        ):
            assert desks.get(channel) == consultant_id

    # --- for scripted histories -------------------------------------------------

    def check(self):
        for invar in self.invariants:
            invar.function(self)

    def call_of(self, who) -> Consultation:
        return Consultation.objects.select_related("ticket").get(
            consultant_id=self.consultant_ids[who], outcome="active"
        )

    # --- quiescence -------------------------------------------------------------

    def everything_settles(self):
        self.quiesce()

    def teardown(self):
        # Every history ends settled; not after a failure, which it would hide.
        if sys.exc_info()[0] is None:
            self.quiesce()

    def quiesce(self):
        """Look ahead: every departure settles, time passes beyond the process
        timeout and the grace while the live processes beat and repair, and
        nothing is left held by a socket that is gone. Rolled back, so that
        the history goes on from here."""
        saved = copy.deepcopy((self.desks, self.callers, self.gone, self.unsettled))
        later = timezone.now() + timedelta(
            seconds=PROCESS_TIMEOUT_SECONDS + GRACE_SECONDS + 1
        )
        try:
            with transaction.atomic():
                for process in self.processes:
                    assert self.settle(process)
                lost = set(self.gone)  # the silent processes' sockets
                # Two passes: a grace that the first one starts ends by the next.
                for now in (later, later + timedelta(seconds=GRACE_SECONDS + 1)):
                    ServerProcess.objects.filter(pk__in=self.processes).update(
                        heartbeat_at=now
                    )
                    self.sweep(now, lost=lost)
                self.nothing_is_held_by_a_gone_socket(now)
                raise Rollback
        except Rollback:
            tally("quiescence checked")
        finally:
            self.desks, self.callers, self.gone, self.unsettled = saved

    def nothing_is_held_by_a_gone_socket(self, now):
        """No waiting ticket without a live or in-grace caller socket, no active
        call without both parties so, no online or away consultant without a
        desk socket, and no process left that has stopped beating."""
        cutoff = now - timedelta(seconds=GRACE_SECONDS)

        def present(channel, dropped_at, sockets) -> bool:
            if channel:
                return channel in sockets
            return dropped_at is not None and dropped_at >= cutoff

        for ticket in Ticket.objects.filter(state__in=LIVE):
            held = (ticket.state, ticket.caller_channel, ticket.dropped_at)
            assert present(ticket.caller_channel, ticket.dropped_at, self.callers), held
        for call in Consultation.objects.filter(outcome="active"):
            desk = (call.consultant_channel, call.consultant_dropped_at)
            assert present(*desk, self.desks), (call.pk, desk)
        desks = dict(DeskSocket.objects.values_list("channel_name", "consultant_id"))
        assert desks == {c: owner for c, (owner, _) in self.desks.items()}
        for pk, presence in Consultant.objects.values_list("id", "presence"):
            if presence == "offline":
                waiting = Ticket.objects.filter(consultant_id=pk, state="waiting")
                assert not waiting.exists(), pk
            else:
                assert pk in desks.values(), (pk, presence)
        # Silent (and woken) processes are swept once nothing beats for them.
        assert live_processes() == set(self.processes)


def live_processes() -> set[str]:
    """Processes not taken for dead (a swept one stays a while as a tombstone)."""
    alive = ServerProcess.objects.filter(swept_at__isnull=True)
    return set(alive.values_list("pk", flat=True))


def tally(what: str) -> None:
    """Count a move in Hypothesis's statistics (`--hypothesis-show-statistics`)."""
    with contextlib.suppress(InvalidArgument):  # outside a Hypothesis test
        note(what)


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
    "media_connected": (desk_in_call, {}, 1),
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
    # It opens a desk and closes one: the number of desks stays bounded.
    "desk_taken_over": (desk_in_call, {"process": ONE_OF_TWO}, 1),
    "operator_ends_call": (lambda m: True, {}, 1),
    "operator_removes_ticket": (lambda m: True, {}, 1),
    "consultant_leaves": (
        lambda m: True,
        {"who": ONE_OF_TWO, "code": st.sampled_from([4401, 4403])},
        1,
    ),
    "database_fails": (
        lambda m: True,
        {
            "retry_fails": st.booleans(),
            "departure_fails": st.booleans(),
            "next_read_fails": st.booleans(),
        },
        4,
    ),
    "repair_pass": (lambda m: any(m.unsettled[p] for p in m.processes), {}, 2),
    "grace_period_runs_out": (lambda m: True, {}, 1),
    "server_process_dies": (lambda m: True, {"which": ONE_OF_TWO}, 1),
    "server_process_goes_silent": (lambda m: True, {"which": ONE_OF_TWO}, 1),
    "process_timeout_passes": (lambda m: m.silent, {}, 1),
    "swept_process_wakes": (lambda m: m.asleep.keys() - m.silent, {}, 1),
    "everything_settles": (lambda m: True, {}, 1),
}
# What `database_fails` may run through a lost connection: what calls a service.
FAULTABLE = {
    name: action
    for name, action in ACTIONS.items()
    if name
    not in {
        "database_fails",
        "repair_pass",
        "grace_period_runs_out",
        "server_process_dies",
        "server_process_goes_silent",
        "process_timeout_passes",
        "swept_process_wakes",
        "everything_settles",
    }
}
GRACE_SECONDS = 30
# Only the process that a step kills or silences is ever taken for dead.
PROCESS_TIMEOUT_SECONDS = 3600


def set_up(settings) -> None:
    settings.CONSULT_GRACE_SECONDS = GRACE_SECONDS
    settings.CONSULT_PROCESS_TIMEOUT_SECONDS = PROCESS_TIMEOUT_SECONDS
    # Sweeps an hour ahead would ask every waiter whether they are still
    # there: that check has tests of its own (test_join_limits, test_still_there).
    settings.CONSULT_STILL_THERE_AFTER_SECONDS = 0
    # Calls here never report media: the connecting deadline (tested in
    # test_connectivity.py) would end them long before any grace ran out.
    settings.CONSULT_CONNECT_SECONDS = 86400
    QueueMachine.consultant_ids = (
        make_consultant("ada", presence="offline").id,
        make_consultant("bob", presence="offline").id,
    )


def started(histories):
    """Run each history on a fresh machine (both consultants in a call), with
    the invariants after each step and the quiescence check at its end."""
    for history in histories:
        machine = QueueMachine()
        machine.both_consultants_in_a_call()
        machine.check()
        for _ in history(machine):
            machine.check()
        machine.quiesce()


def test_random_queue_histories_keep_the_invariants(settings):
    set_up(settings)
    run_state_machine_as_test(
        QueueMachine,
        settings=examples(max_examples=12, stateful_step_count=50, deadline=None),
    )


# --- scripted histories -------------------------------------------------------
# The examples of the new moves, each run every time (a stateful test takes no
# `@example`): one history per generator, the invariants checked at each yield.


def join_retried_after_a_lost_connection(m):
    """`database_call` retries a join whose connection was lost: one ticket."""
    with m.connection_lost(Fault()):
        caller = m.new_caller_joins(0, 0)
    yield
    assert Ticket.objects.filter(caller_channel=caller, state="waiting").count() == 1


def desk_closed_with_4013_mid_answer(m):
    """The answer and its retry fail, and so does the departure: the desk's row
    and call wait for its process's repair pass, which hands the call to the
    grace rule once the database is back."""
    call = m.call_of(0)
    desk = call.consultant_channel
    process = m.desks[desk][1]
    with m.connection_lost(Fault(retry_fails=True, departure_fails=True)):
        m.desk_signal_from(desk, "answer")
    yield
    assert desk in m.gone and [c for c, _ in m.unsettled[process]] == [desk]
    assert DeskSocket.objects.filter(channel_name=desk).exists()
    assert not m.settle(process, fails_at=0)  # the database is still out
    yield
    assert m.settle(process)
    yield
    call.refresh_from_db()
    assert (call.outcome, call.consultant_channel) == ("active", "")
    assert call.consultant_dropped_at is not None


def caller_on_a_silent_process(m):
    """A silent process's caller holds its call until the process timeout, not
    the grace; then the call waits through the caller's grace."""
    call = m.call_of(1)
    caller = call.ticket.caller_channel
    m.server_process_goes_silent(m.processes.index(m.callers[caller]))
    yield
    m.grace_period_runs_out()
    yield
    assert Ticket.objects.get(pk=call.ticket_id).caller_channel == caller
    m.process_timeout_passes()
    yield
    ticket = Ticket.objects.get(pk=call.ticket_id)
    assert (ticket.state, ticket.caller_channel) == ("in_call", "")


def paused_process_taken_for_dead_wakes(m):
    """A paused process swept meanwhile closes its sockets when it wakes."""
    desk = m.call_of(0).consultant_channel
    process = m.desks[desk][1]
    m.server_process_goes_silent(m.processes.index(process))
    yield
    m.process_timeout_passes()
    yield
    m.wake(process)
    yield
    assert process not in m.asleep and not m.gone


def logout_revokes_only_that_consultant(m):
    """Logout with two desks open: both close, the caller hears `hangup`; the
    other consultant's desk and call go on."""
    m.open_desk(0, 1)
    other = m.call_of(1)
    yield
    m.leave(m.consultant_ids[0], 4401)
    yield
    assert {owner for owner, _ in m.desks.values()} == {m.consultant_ids[1]}
    assert m.call_of(1) == other


def operators_tell_only_the_parties(m):
    """An operator ends one call and removes a waiting caller; a request that
    loses its connection changes nothing."""
    waiting = m.new_caller_joins(1, 0)
    yield
    m.operator_ends(m.call_of(0).pk)
    yield
    m.operator_removes(str(Ticket.objects.get(caller_channel=waiting).pk))
    yield
    call = m.call_of(1)
    with m.connection_lost(Fault()):
        m.operator_ends(call.pk)
    yield
    assert m.call_of(1) == call


def desk_taken_over_twice(m):
    """A new tab takes the call and the old one closes; a third takes it too,
    but loses its connection right after: the call waits for a desk."""
    old = m.call_of(0).consultant_channel
    m.take_over(m.consultant_ids[0], 1)
    yield
    assert old not in m.desks
    with m.connection_lost(Fault(next_read_fails=True)):
        m.take_over(m.consultant_ids[0], 0)
    yield
    call = m.call_of(0)
    assert (call.consultant_channel, len(m.desks)) == ("", 1)


def test_scripted_histories_keep_the_invariants(settings):
    set_up(settings)
    started(
        [
            join_retried_after_a_lost_connection,
            desk_closed_with_4013_mid_answer,
            caller_on_a_silent_process,
            paused_process_taken_for_dead_wakes,
            logout_revokes_only_that_consultant,
            operators_tell_only_the_parties,
            desk_taken_over_twice,
        ]
    )


def swept_process_binds_a_caller_then_dies(m):
    """A paused process taken for dead handles a join queued on one of its
    sockets before its next heartbeat would learn of it, then dies."""
    which = 0
    process = m.processes[which]
    m.server_process_goes_silent(which)
    m.process_timeout_passes()
    yield
    channel = f"caller-{next(m.names)}"
    m.callers[channel] = process
    m.join(channel, 1)
    yield
    del m.callers[channel]  # dies for good; only its tombstone row names it
    m.gone[channel] = (process, None)
    yield


def test_a_swept_process_that_dies_before_its_heartbeat_leaves_no_ghost(settings):
    """Its tombstone row gets what it bound after the sweep swept too."""
    set_up(settings)
    started([swept_process_binds_a_caller_then_dies])
