"""Racing desks: exactly one winner, on SQLite and PostgreSQL (row locks matter)."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from consult import errors, services
from consult.models import Consultation, Ticket
from consult.recording_models import Recording
from consult.services import calls
from tests.factories import accept, join, make_consultant

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 50


def race(threads: int, attempt) -> list:
    """Run `attempt(i)` in `threads` threads released at once; their outcomes."""
    barrier = threading.Barrier(threads)
    outcomes = [None] * threads

    def run(i):
        try:
            barrier.wait()
            outcomes[i] = attempt(i)
        except errors.ConsultError as error:
            outcomes[i] = error.code
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    return outcomes


def accept_as_desk(consultant, ticket_id=None):
    def attempt(i):
        result = services.ticket_accept(
            consultant_id=consultant.id,
            channel=f"desk-{i}",
            process="p",
            ticket_id=ticket_id,
        )
        return result.value["ticket"]

    return attempt


def hang_up_winner(outcomes):
    [winner] = [i for i, outcome in enumerate(outcomes) if outcome not in ERROR_CODES]
    services.consultation_end(channel=f"desk-{winner}", party="consultant")


ERROR_CODES = {"ticket_gone", "queue_empty", "busy"}


def test_eight_desks_accepting_the_same_ticket_have_one_winner_every_round():
    consultant = make_consultant("ada")
    for round_ in range(ROUNDS):
        ticket, _ = join(consultant, f"caller-{round_}")
        outcomes = race(8, accept_as_desk(consultant, ticket_id=str(ticket.id)))
        assert outcomes.count(str(ticket.id)) == 1, (round_, outcomes)
        assert sorted(set(outcomes) - {str(ticket.id)}) == ["ticket_gone"]
        hang_up_winner(outcomes)


def test_two_desks_accepting_next_with_one_waiting_caller_have_one_winner():
    consultant = make_consultant("ada")
    for round_ in range(ROUNDS):
        ticket, _ = join(consultant, f"caller-{round_}")
        outcomes = race(2, accept_as_desk(consultant))
        assert sorted(outcomes) == sorted([str(ticket.id), "queue_empty"]), (
            round_,
            outcomes,
        )
        hang_up_winner(outcomes)


def test_racing_joins_never_overfill_a_queue():
    consultant = make_consultant("ada", max_queue=3)
    outcomes = race(8, lambda i: join(consultant, f"caller-{i}")[1]["position"])
    assert sorted(o for o in outcomes if isinstance(o, int)) == [1, 2, 3]
    assert outcomes.count("queue_full") == 5


def test_a_chosen_ticket_and_the_head_taken_at_once_give_one_call():
    # One desk takes a chosen caller while another takes the head: the one
    # active consultation per consultant decides, whichever tickets they read.
    ada = make_consultant("ada")
    for n in range(10):
        join(ada, f"x{n}")
        second, _ = join(ada, f"y{n}")

        def attempt(i, n=n, second=second):
            return services.ticket_accept(
                consultant_id=ada.id,
                channel=f"desk-{n}-{i}",
                process="p",
                ticket_id=str(second.id) if i == 0 else None,
            ).value["ticket"]

        outcomes = race(2, attempt)
        taken = [o for o in outcomes if o not in ("busy", "ticket_gone", "queue_empty")]
        assert len(taken) == 1, outcomes
        assert Ticket.objects.filter(consultant=ada, state="in_call").count() == 1
        winner = f"desk-{n}-{outcomes.index(taken[0])}"
        services.consultation_end(channel=winner, party="consultant")
        Ticket.objects.filter(consultant=ada, state="waiting").delete()


def test_an_answer_that_loses_to_a_hang_up_leaves_the_ended_call_unconnected(
    monkeypatch,
):
    # The answer reads the call, then the caller hangs up before the answer
    # writes `connected_at` (forced here at that moment: the answer's clock).
    ada = make_consultant("ada")
    join(ada, "caller-1")
    call_id = accept(ada, "desk-1").value["consultation"]
    clock, hung_up = calls.timezone, []

    class HangUpFirst:
        @staticmethod
        def now():
            if not hung_up:
                hung_up.append(True)
                services.consultation_end(channel="caller-1", party="caller")
            return clock.now()

    monkeypatch.setattr(calls, "timezone", HangUpFirst)
    with pytest.raises(errors.NotInCall):
        services.consultation_answer(channel="desk-1", answer={"type": "answer"})
    call = Consultation.objects.get(pk=call_id)
    assert hung_up and call.outcome != "active"
    assert call.connected_at is None


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite runs one write transaction at a time: no such interleaving",
)
def test_a_recording_asked_for_while_the_call_hangs_up_is_stopped():
    ada = make_consultant("ada")
    join(ada, "caller-1")
    call_id = accept(ada, "desk-1").value["consultation"]
    asked = threading.Event()

    def ask_while_holding_the_call():
        try:
            with transaction.atomic():
                call = Consultation.objects.select_for_update().get(pk=call_id)
                Recording.objects.create(consultation=call, requested_at=timezone.now())
                asked.set()
                time.sleep(1.0)  # the hang-up waits for this row meanwhile
        finally:
            connection.close()

    asking = threading.Thread(target=ask_while_holding_the_call)
    asking.start()
    assert asked.wait(5)
    services.consultation_end(channel="caller-1", party="caller")
    asking.join()
    states = Recording.objects.filter(consultation_id=call_id).values_list(
        "state", flat=True
    )
    assert list(states) == [Recording.State.STOPPED]
