"""Racing desks: exactly one winner, on SQLite and PostgreSQL (row locks matter)."""

import threading

import pytest
from django.db import connection

from consult import errors, services
from tests.factories import join, make_consultant

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
