"""Database faults under live sockets, on PostgreSQL: cut connections as a failover
does, and a database that refuses connections for a while. No socket is closed
with 1011; what a gone socket held is settled once the database is back."""

import asyncio
import contextlib

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection

from consult.database import DatabaseUnavailable
from consult.models import Consultant, Ticket
from signaling import runtime
from tests.conftest import is_postgres
from tests.factories import PASSWORD, make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type
from tests.signaling.live import postgres_admin
from tests.signaling.test_caller_consumer import join_frame

pytestmark = pytest.mark.django_db(transaction=True)

CANDIDATE = {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}


def cut_connections() -> None:
    """As a failover does: terminate every server connection to the test database."""
    postgres_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        connection.settings_dict["NAME"],
    )
    connection.close()


def refuse_connections(refuse: bool) -> None:
    name = connection.settings_dict["NAME"]
    allow = "false" if refuse else "true"
    postgres_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allow}')
    if refuse:
        cut_connections()


def _close_quietly() -> None:
    with contextlib.suppress(DatabaseError):
        connection.close()


@pytest.fixture(autouse=True)
def reconnect_for_teardown(transactional_db):
    """The test cut this thread's connection too: the flush after it needs another.
    And the pool, whose reconnection attempts back off during an outage, starts
    afresh for the tests after it, and for this one: a pool that earlier tests
    grew to its maximum (40 racing joins) takes longer than the pool's timeout
    to replace that many cut connections (a known gap: README, the pool timeout)."""
    if connection.settings_dict["OPTIONS"].get("pool"):
        connection.close_pool()
    yield
    _close_quietly()
    if connection.settings_dict["OPTIONS"].get("pool"):
        connection.close_pool()


@pytest.fixture(autouse=True)
async def reconnect_sync_thread():
    """...and the connection of the thread that `sync_to_async` runs ORM calls
    on, which the next tests would otherwise inherit, cut."""
    yield
    await sync_to_async(_close_quietly)()


@pytest.fixture
async def ada(transactional_db):
    if not is_postgres():
        # Backend termination is PostgreSQL's; `make test` runs this file there.
        pytest.skip("PostgreSQL only")
    return await sync_to_async(make_consultant)("ada")


async def test_frames_after_a_failover_are_served_on_fresh_connections(ada):
    desk = await desk_socket("ada")
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")

    await sync_to_async(cut_connections)()
    await caller.send_json_to({"type": "ice", "candidate": CANDIDATE})
    await desk.send_json_to({"type": "status", "status": "away"})
    while not (await receive_type(desk, "queue"))["callers"]:
        pass  # a push from before the join may come first
    await sync_to_async(cut_connections)()
    await caller.send_json_to({"type": "cancel"})
    await receive_type(caller, "cancelled")

    ticket = await Ticket.objects.aget(pk=queued["ticket"])
    assert ticket.state == "ended"
    for _ in range(50):  # the desk's frame is handled beside the caller's
        if (await Consultant.objects.aget()).presence == "away":
            break
        await asyncio.sleep(0.1)
    assert (await Consultant.objects.aget()).presence == "away"
    await caller.disconnect()
    await desk.disconnect()


async def test_an_outage_closes_with_4013_and_the_departure_is_settled_later(ada):
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")

    await sync_to_async(refuse_connections)(True)
    try:
        await caller.send_json_to({"type": "ice", "candidate": CANDIDATE})
        # Two waits of the pool's timeout (the call and its retry), then 4013.
        patience = 3 * settings.DATABASES["default"]["OPTIONS"]["pool"]["timeout"]
        closed = await caller.receive_output(patience)
        while closed["type"] == "websocket.send":  # pushes from before
            closed = await caller.receive_output(patience)
        assert (closed["type"], closed["code"]) == ("websocket.close", 4013)
        with contextlib.suppress(asyncio.CancelledError):
            await caller.disconnect()  # the drop cannot be written now
    finally:
        await sync_to_async(refuse_connections)(False)

    current = await runtime.current()
    ticket = await Ticket.objects.aget(pk=queued["ticket"])
    for _ in range(30):
        if ticket.dropped_at is not None:
            break
        with contextlib.suppress(DatabaseUnavailable):
            await current.settle()
        await asyncio.sleep(0.5)
        ticket = await Ticket.objects.aget(pk=queued["ticket"])
    # Now in its grace period, as any dropped caller: the sweep ends it later.
    assert (ticket.state, ticket.caller_channel) == ("waiting", "")
    assert ticket.dropped_at is not None


def test_pages_after_a_failover_do_not_fail_on_dead_pooled_connections(ada):
    """Each idle pooled connection that a failover cut is checked when taken,
    and replaced, instead of failing its request once (HTTP 500)."""
    from django.test import Client

    client = Client()
    for _ in range(3):
        assert client.get("/accounts/login/").status_code == 200
    cut_connections()
    for _ in range(24):
        assert client.get("/accounts/login/").status_code == 200
    assert client.login(username="ada", password=PASSWORD)
