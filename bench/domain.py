"""What one call costs the domain, without sockets: `python -m bench.domain`.

Runs the database work of one call of the calls scenario (the desk opens,
a caller joins, accept, answer, a relay each way, hang-up, both sockets
drop, two desk pushes) N times in one thread on a fresh PostgreSQL database
(`consult_domain`, or `--database`), and prints the SQL statements (in all,
by phase, and for a call at a desk already open) and the CPU per call: the
share of a call's cost that no transport change can take away.
"""

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

from .stack import VENV, Config, Stack, server_env

OFFER = "v=0\r\n" + "a=x-pad:" + "x" * 3000 + "\r\n"


# The phases of a call, in order. The budget is for a call at a desk
# already open: DESK_OPEN, with the desk's queue pushes that join and
# hang-up cause; the desk's opening and closing are counted apart.
DESK_OPEN = ("join", "accept", "answer", "candidates", "hang-up", "desk pushes")
PHASES = ("desk opening", *DESK_OPEN, "desk closing")


def call_phases(consultant, n: int) -> list[tuple[str, Callable[[], object]]]:
    """One call's database work as (phase, work) steps, in the order of PHASES."""
    from consult import selectors, services

    desk, caller = f"desk-{n}", f"caller-{n}"

    def desk_opening():
        selectors.consultant_for_user(consultant.user)
        services.desk_opened(consultant_id=consultant.id, channel=desk, process="p")
        selectors.desk_state(consultant)

    def join():
        services.ticket_create(
            consultant_slug=consultant.slug,
            caller_name="Caller",
            reason="",
            audio_only=False,
            offer=OFFER,
            channel=caller,
            process="p",
            address="198.18.0.1",
        )

    def candidates():
        services.ticket_add_candidate(channel=caller, candidate={"candidate": ""})
        services.consultation_relay(channel=desk, party="consultant", frame={})

    def hang_up():
        services.consultation_end(channel=caller, party="caller")
        services.caller_dropped(channel=caller)

    def desk_pushes():
        for _ in range(2):
            selectors.desk_queue(consultant.id)

    return [
        ("desk opening", desk_opening),
        ("join", join),
        (
            "accept",
            lambda: services.ticket_accept(
                consultant_id=consultant.id, channel=desk, process="p"
            ),
        ),
        (
            "answer",
            lambda: services.consultation_answer(
                channel=desk, answer={"type": "answer", "sdp": "v=0"}
            ),
        ),
        ("candidates", candidates),
        ("hang-up", hang_up),
        ("desk pushes", desk_pushes),
        (
            "desk closing",
            lambda: services.desk_closed(consultant_id=consultant.id, channel=desk),
        ),
    ]


def one_call(consultant, n: int) -> None:
    for _phase, work in call_phases(consultant, n):
        work()


def statements_by_phase(consultant, n: int) -> dict[str, int]:
    """SQL statements of each phase of one call (BEGIN and COMMIT included)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for phase, work in call_phases(consultant, n):
        with CaptureQueriesContext(connection) as queries:
            work()
        counts[phase] = len(queries.captured_queries)
    return counts


def measure(calls: int) -> dict:
    import django

    django.setup()
    from consult.models import Consultant

    from .seed import seed

    seed(1, 20, 1, "domain-only-password")
    consultant = Consultant.objects.get()
    for n in range(5):  # warm caches: compiled queries, the pool
        one_call(consultant, -1 - n)
    phases = statements_by_phase(consultant, -10)
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(calls):
        one_call(consultant, n)
    return {
        "statements_per_call": sum(phases.values()),
        "statements_desk_open": sum(phases[phase] for phase in DESK_OPEN),
        "statements_by_phase": phases,
        "cpu_ms_per_call": round((time.process_time() - cpu) * 1000 / calls, 1),
        "wall_ms_per_call": round((time.perf_counter() - wall) * 1000 / calls, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.domain")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--database", default="consult_domain", help="(emptied)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure(args.calls), indent=1))
        return
    config = Config(database=args.database)
    Stack(config).fresh_database()
    command = [str(VENV / "python"), "-m", "bench.domain", "--inner"]
    out = subprocess.run(
        [*command, "--calls", str(args.calls)],
        env=server_env(config),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
