"""Two real `daphne` processes sharing Redis and PostgreSQL serve one call.

The caller and the consultant sit on different processes; then one process is
killed with `kill -9` mid-call and the other party must still hear the end of
it, through the grace-period rule run by the surviving process's sweeper.
"""

import os
import time

import pytest
from channels.db import database_sync_to_async as sync_to_async

from consult.models import Consultant, Consultation, DeskSocket, Ticket
from tests.factories import ANSWER
from tests.signaling.live import (
    CANDIDATE,
    END_OF_CANDIDATES,
    ODD_OFFER,
    Peer,
    running_servers,
    set_up_call,
)

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

GRACE = 3
PROCESS_TIMEOUT = 2
LIVE = [Ticket.State.WAITING, Ticket.State.IN_CALL]


@pytest.fixture
def servers(transactional_db, tmp_path):
    """Two servers on one Redis and on this test's database; gone at teardown.

    Requesting `transactional_db` first means the servers die before
    pytest-django flushes the tables under them.
    """
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    with running_servers(2, tmp_path, redis_url) as started:
        yield started


async def test_call_between_two_processes_relays_every_message(servers):
    a, b = servers
    bystander = await Peer.open(b, "/ws/call/")
    await bystander.expect("hello")
    caller, desk = await set_up_call(caller_server=a, desk_server=b)

    await caller.send("ice", candidate=CANDIDATE)
    assert (await desk.expect("ice"))["candidate"] == CANDIDATE
    await desk.send("ice", candidate=CANDIDATE)
    assert (await caller.expect("ice"))["candidate"] == CANDIDATE
    await desk.send("ice", candidate=END_OF_CANDIDATES)
    assert (await caller.expect("ice"))["candidate"] == END_OF_CANDIDATES
    restart = {"type": "offer", "sdp": ODD_OFFER}
    await desk.send("offer", offer=restart)
    assert (await caller.expect("offer"))["offer"] == restart
    await caller.send("answer", answer={"type": "answer", "sdp": ANSWER})
    assert (await desk.expect("answer"))["answer"]["sdp"] == ANSWER

    await desk.send("hangup")
    assert await caller.expect("hangup") == {"type": "hangup", "by": "consultant"}
    call = await sync_to_async(Consultation.objects.get)()
    assert (call.outcome, call.ended_by) == ("completed", "consultant")

    # The bystander on the desk's process heard only the lobby, never the call.
    await bystander.send("ping")
    assert await bystander.expect("pong") == {"type": "pong"}
    for peer in (caller, desk, bystander):
        await peer.close()


def leftovers() -> dict:
    return {
        "active consultations": Consultation.objects.filter(outcome="active").count(),
        "live tickets": Ticket.objects.filter(state__in=LIVE).count(),
        "desk sockets": DeskSocket.objects.count(),
    }


async def hung_up_after_grace(survivor: Peer, killed_at: float, by: str) -> None:
    """The survivor hears `peer` reconnecting once the dead process is noticed,
    then `hangup` once the grace period has run out, not before."""
    assert await survivor.expect("peer", PROCESS_TIMEOUT + 5) == {
        "type": "peer",
        "state": "reconnecting",
    }
    noticed = time.monotonic()
    # The dead process's last heartbeat may be one beat older than the kill.
    assert noticed - killed_at >= PROCESS_TIMEOUT - 0.6
    hangup = await survivor.expect("hangup", GRACE + 5)
    assert hangup == {"type": "hangup", "by": by, "reason": "disconnected"}
    assert time.monotonic() - noticed >= GRACE - 0.6


async def test_killed_desk_process_ends_call_for_caller_after_grace(servers):
    a, b = servers
    caller, desk = await set_up_call(caller_server=a, desk_server=b)
    b.kill()
    await hung_up_after_grace(caller, time.monotonic(), by="consultant")

    call = await sync_to_async(Consultation.objects.get)()
    assert (call.outcome, call.ended_by, call.end_reason) == (
        "disconnected",
        "consultant",
        "disconnected",
    )
    assert await sync_to_async(leftovers)() == {
        "active consultations": 0,
        "live tickets": 0,
        "desk sockets": 0,
    }
    # With no desk left past its grace, the consultant goes offline for callers.
    await caller.push(
        "consultants", lambda frame: frame["consultants"][0]["status"] == "offline"
    )
    presence = await sync_to_async(
        lambda: Consultant.objects.values_list("presence", flat=True).get()
    )()
    assert presence == "offline"
    await caller.close()
    await desk.close()


async def test_killed_caller_process_ends_call_for_consultant_after_grace(servers):
    a, b = servers
    caller, desk = await set_up_call(caller_server=a, desk_server=b)
    a.kill()
    await hung_up_after_grace(desk, time.monotonic(), by="caller")

    call = await sync_to_async(Consultation.objects.get)()
    assert (call.outcome, call.ended_by) == ("disconnected", "caller")
    remaining = await sync_to_async(leftovers)()
    assert remaining == {
        "active consultations": 0,
        "live tickets": 0,
        "desk sockets": 1,
    }
    # The desk lives on and takes the next caller as usual.
    await desk.send("ping")
    assert await desk.expect("pong") == {"type": "pong"}
    await desk.close()
    await caller.close()


async def test_a_stopped_process_is_swept_at_once_and_its_callers_end_soon(servers):
    """SIGTERM is a clean stop: what its sockets held ends one process timeout
    after it, not a whole grace period after the others noticed."""
    from django.utils import timezone

    a, b = servers
    caller, _ = await set_up_call(caller_server=a, desk_server=b)
    stopped = timezone.now()
    b.stop()

    assert (await caller.expect("peer"))["state"] == "reconnecting"
    hangup = await caller.expect("hangup", wait=GRACE + PROCESS_TIMEOUT + 5)
    assert hangup == {"type": "hangup", "by": "consultant", "reason": "disconnected"}
    call = await sync_to_async(Consultation.objects.get)()
    # The drop is dated so that it expires one process timeout after the stop
    # (a process merely found dead would date it when noticed, after the stop).
    expires = call.consultant_dropped_at.timestamp() + GRACE
    assert expires <= stopped.timestamp() + PROCESS_TIMEOUT + 1
    presence = await sync_to_async(
        lambda: Consultant.objects.values_list("presence", flat=True).get()
    )()
    assert presence == "offline"
    await caller.close()
