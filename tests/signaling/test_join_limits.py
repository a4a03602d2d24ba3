"""Join limits through real sockets: joins per socket and per address, quick
cancels that leave no history, proof of work for a queue under pressure, and
the per-address cap across two real server processes."""

import asyncio
import os
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache

from consult.models import Consultation, Ticket
from consult.services.tickets import QUICK_CANCELS
from signaling.limits import JOINS_PER_ADDRESS
from tests.consult.test_join_limits import solve
from tests.factories import OFFER, join, make_consultant
from tests.signaling.conftest import TIMEOUT, caller_socket
from tests.signaling.live import Peer, running_servers
from tests.signaling.test_limits import close_all, open_from

pytestmark = pytest.mark.django_db(transaction=True)


def join_frame(**extra) -> dict:
    return {
        "type": "join",
        "consultant": "ada",
        "name": "Bo",
        "offer": {"type": "offer", "sdp": OFFER},
        **extra,
    }


async def answer_to(socket, frame: dict) -> dict:
    """Send `frame`; the first direct answer (pushes skipped)."""
    await socket.send_json_to(frame)
    while True:
        got = await socket.receive_json_from(TIMEOUT)
        if got["type"] not in {"consultants", "position", "queue"}:
            return got


async def hello_from(address: str):
    socket = await open_from(address)
    assert (await socket.receive_json_from(TIMEOUT))["type"] == "hello"
    return socket


@pytest.fixture
async def ada(transactional_db):
    JOINS_PER_ADDRESS.clear()
    await sync_to_async(cache.clear)()
    return await sync_to_async(make_consultant)("ada")


async def test_a_socket_that_keeps_joining_and_cancelling_is_slowed_down(ada, settings):
    settings.CONSULT_JOIN_BURST_PER_SOCKET = 2
    settings.CONSULT_JOINS_PER_MINUTE_PER_SOCKET = 6
    caller = await hello_from("203.0.113.50")
    for _ in range(2):
        assert (await answer_to(caller, join_frame()))["type"] == "queued"
        assert (await answer_to(caller, {"type": "cancel"}))["type"] == "cancelled"

    refused = await answer_to(caller, join_frame())

    assert refused["code"] == "too_many_joins"
    assert 1 <= refused["retry_after"] <= 10
    assert refused["message"]
    assert not await Ticket.objects.filter(state="waiting").aexists()
    # Another socket of the same address has its own allowance.
    other = await hello_from("203.0.113.50")
    assert (await answer_to(other, join_frame()))["type"] == "queued"
    await close_all([caller, other])


async def test_many_sockets_of_one_address_share_its_join_allowance(ada, settings):
    settings.CONSULT_JOIN_BURST_PER_ADDRESS = 3
    settings.CONSULT_JOINS_PER_MINUTE_PER_ADDRESS = 1
    sockets = [await hello_from("203.0.113.51") for _ in range(4)]
    for socket in sockets[:3]:
        assert (await answer_to(socket, join_frame()))["type"] == "queued"

    refused = await answer_to(sockets[3], join_frame())
    elsewhere = await hello_from("203.0.113.52")

    assert refused["code"] == "too_many_joins"
    assert 1 <= refused["retry_after"] <= 60
    assert (await answer_to(elsewhere, join_frame()))["type"] == "queued"
    await close_all([*sockets, elsewhere])


async def test_join_and_cancel_at_once_write_no_history_but_a_count(ada, settings):
    settings.CONSULT_QUICK_CANCEL_SECONDS = 10
    before = QUICK_CANCELS._value.get()
    caller = await caller_socket()
    for _ in range(3):
        assert (await answer_to(caller, join_frame()))["type"] == "queued"
        assert (await answer_to(caller, {"type": "cancel"}))["type"] == "cancelled"

    assert not await Consultation.objects.aexists()
    assert QUICK_CANCELS._value.get() == before + 3
    await caller.disconnect()


@pytest.fixture
async def pressed(ada, settings):
    """Ada's queue of 8, half held by four addresses: under pressure."""
    settings.CONSULT_JOIN_CHALLENGE_MAX_NUMBER = 2000
    await sync_to_async(ada.__class__.objects.filter(pk=ada.pk).update)(max_queue=8)
    await sync_to_async(ada.refresh_from_db)()
    for i in range(4):
        await sync_to_async(join)(ada, f"squat-{i}", address=f"198.51.100.{i}")
    return ada


async def test_a_join_under_pressure_is_answered_with_a_challenge_to_solve(pressed):
    caller = await hello_from("203.0.113.60")

    required = await answer_to(caller, join_frame())
    assert required["code"] == "challenge_required"
    assert required["message"]
    solution = await sync_to_async(solve)(required["challenge"])
    queued = await answer_to(caller, join_frame(altcha=solution))

    assert queued["type"] == "queued"
    # The same solution again, from another socket: refused, with a new challenge.
    again = await hello_from("203.0.113.61")
    replayed = await answer_to(again, join_frame(altcha=solution))
    assert replayed["code"] == "challenge_failed"
    assert replayed["challenge"] != required["challenge"]
    malformed = await answer_to(again, join_frame(altcha="not base64!"))
    assert malformed["code"] == "bad_message"
    waiting = Ticket.objects.filter(state="waiting", caller_address="203.0.113.61")
    assert not await waiting.aexists()
    await close_all([caller, again])


async def test_without_pressure_a_solution_is_not_needed(ada):
    caller = await hello_from("203.0.113.62")
    assert (await answer_to(caller, join_frame()))["type"] == "queued"
    await caller.disconnect()


@pytest.mark.processes
async def test_forty_joins_from_one_address_across_two_processes_stay_within_the_cap(
    tmp_path,
):
    """Forty sockets of one address, twenty on each of two server processes,
    join at once: the queue holds the address's cap, no more."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    await sync_to_async(make_consultant)("ada", max_queue=100)
    with running_servers(
        2,
        tmp_path,
        redis_url,
        CONSULT_MAX_WAITING_PER_ADDRESS="5",
        CONSULT_MAX_SOCKETS_PER_ADDRESS="20",
        # Only the cap is under test here: the join rates are lifted.
        CONSULT_JOIN_BURST_PER_ADDRESS="100",
        CONSULT_JOIN_BURST_PER_SOCKET="100",
    ) as servers:
        peers = [await Peer.open(servers[i % 2], "/ws/call/") for i in range(40)]
        for peer in peers:
            await peer.expect("hello")

        async def send_join(peer, i):
            await peer.send(
                "join",
                consultant="ada",
                name=f"Racer {i}",
                offer={"type": "offer", "sdp": OFFER},
                reason=uuid.uuid4().hex,
            )
            while True:
                frame = await peer.receive()
                if frame["type"] in {"queued", "error"}:
                    return frame

        answers = await asyncio.gather(
            *(send_join(peer, i) for i, peer in enumerate(peers))
        )
        for peer in peers:
            await peer.close()

    kinds = [a["type"] if a["type"] == "queued" else a["code"] for a in answers]
    assert kinds.count("queued") == 5, kinds
    assert kinds.count("too_many_from_address") == 35, kinds
    waiting = await Ticket.objects.filter(caller_address="127.0.0.1").acount()
    assert waiting == 5
