"""Who holds a desk changes at once: a newer desk takes over, and logout, a new
password or deactivation close every desk of that consultant within a second."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from consult.models import Consultant, Consultation, DeskSocket
from tests.factories import PASSWORD, make_consultant
from tests.signaling.conftest import (
    caller_socket,
    desk_socket,
    open_socket,
    receive_type,
    session_cookie,
)
from tests.signaling.test_caller_consumer import call_between, join_frame

pytestmark = pytest.mark.django_db(transaction=True)

WITHIN = 1.0  # seconds: "at once"


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada")


async def closed_with(socket, code: int, wait: float = WITHIN) -> None:
    output = await socket.receive_output(wait)
    while output["type"] == "websocket.send":  # frames already on their way
        output = await socket.receive_output(wait)
    assert (output["type"], output.get("code")) == ("websocket.close", code)


async def test_a_new_desk_takes_the_call_from_an_old_one_at_once(ada):
    old, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(old, caller)

    cookie = await sync_to_async(session_cookie)("ada")
    new, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    assert connected
    assert (await new.receive_json_from())["type"] == "hello"
    assert (await receive_type(new, "resumed"))["consultation"] == got["consultation"]
    error = await receive_type(old, "error")
    assert error["code"] == "taken_over"
    await closed_with(old, 4409)
    assert await receive_type(caller, "peer") == {"type": "peer", "state": "back"}
    call = await Consultation.objects.aget(pk=got["consultation"])
    assert call.outcome == "active"
    # The new desk holds the call now.
    await new.send_json_to({"type": "hangup"})
    assert (await receive_type(caller, "hangup"))["by"] == "consultant"
    for socket in (old, new, caller):
        await socket.disconnect()


async def test_logout_closes_the_desk_and_tells_waiting_callers_at_once(ada):
    client = Client()
    await sync_to_async(client.login)(username="ada", password=PASSWORD)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    desk, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    assert connected
    # Logged out once the desk is open (a logout racing the opening can leave
    # the consultant online until the grace runs out: a known gap).
    await receive_type(desk, "hello")
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    await receive_type(caller, "queued")

    await sync_to_async(client.post)("/accounts/logout/")
    await closed_with(desk, 4401)
    assert (await receive_type(caller, "refused", wait=WITHIN))["reason"]
    consultant = await Consultant.objects.aget()
    assert consultant.presence == "offline"
    assert not await DeskSocket.objects.aexists()
    # The old cookie no longer opens a desk.
    again, connected, _ = await open_socket("/ws/desk/", cookie=cookie)
    await closed_with(again, 4401, wait=5)
    for socket in (desk, caller, again):
        await socket.disconnect()


async def test_a_deactivated_consultant_leaves_the_lobby_and_the_desk(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)
    lobby = await caller_socket()

    def deactivate():
        consultant = Consultant.objects.get()
        consultant.is_active = False
        consultant.save()

    await sync_to_async(deactivate)()
    await closed_with(desk, 4403)
    hangup = await receive_type(caller, "hangup", wait=WITHIN)
    assert hangup["by"] == "consultant"
    while (await receive_type(lobby, "consultants", wait=2))["consultants"]:
        pass  # a push from before the change may come first
    call = await Consultation.objects.aget(pk=got["consultation"])
    assert call.outcome == "completed"
    for socket in (desk, caller, lobby):
        await socket.disconnect()


@pytest.mark.parametrize("change", ["password", "deactivate_user"])
async def test_a_new_password_or_an_inactive_user_closes_the_desk(ada, change):
    desk = await desk_socket("ada")

    def apply():
        user = get_user_model().objects.get(username="ada")
        if change == "password":
            user.set_password("another-long-password")
        else:
            user.is_active = False
        user.save()

    await sync_to_async(apply)()
    await closed_with(desk, 4401)
    assert (await Consultant.objects.aget()).presence == "offline"
    await desk.disconnect()


async def test_a_process_taken_for_dead_closes_its_sockets_for_them_to_resume(ada):
    from datetime import timedelta

    from django.utils import timezone

    from consult import services
    from consult.models import ServerProcess, Ticket
    from signaling import runtime

    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")
    # Another process's repair pass takes this one for dead (it was paused).
    await ServerProcess.objects.all().aupdate(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    await sync_to_async(services.sweep)()
    assert (await Ticket.objects.aget()).caller_channel == ""

    await (await runtime.current()).beat()
    await closed_with(caller, 4013)
    again = await caller_socket()
    await again.send_json_to({"type": "resume", "token": queued["token"]})
    back = await receive_type(again, "queued")
    assert (back["ticket"], back["position"]) == (queued["ticket"], 1)
    for socket in (caller, again):
        await socket.disconnect()


async def test_a_deactivated_user_leaves_the_lobby(ada):
    from consult import selectors

    def deactivate_user():
        user = get_user_model().objects.get(username="ada")
        user.is_active = False
        user.save()

    assert await sync_to_async(selectors.consultants_for_lobby)()
    await sync_to_async(deactivate_user)()
    assert await sync_to_async(selectors.consultants_for_lobby)() == []
    caller = await caller_socket()
    await caller.send_json_to(join_frame())
    assert (await receive_type(caller, "error"))["code"] == "unknown_consultant"
    await caller.disconnect()


async def test_deleting_a_consultant_closes_their_desk(ada):
    desk = await desk_socket("ada")
    await sync_to_async(lambda: Consultant.objects.get().delete())()
    await closed_with(desk, 4403)
    await desk.disconnect()
