"""Operators act from the admin through the services: both parties hear at once,
history is written, and nothing live can be deleted behind the sockets' back."""

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client

from consult.models import Consultation, Ticket
from tests.factories import make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type
from tests.signaling.test_caller_consumer import call_between, join_frame

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada")


def lead() -> Client:
    get_user_model().objects.create_superuser("lead", password="a-lead-password")
    client = Client()
    assert client.login(username="lead", password="a-lead-password")
    return client


def admin_action(path: str, action: str, *pks) -> int:
    page = lead().post(
        path, {"action": action, "_selected_action": [str(p) for p in pks]}
    )
    return page.status_code


async def test_end_call_from_the_admin_hangs_up_both_parties(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)

    status = await sync_to_async(admin_action)(
        "/admin/consult/consultation/", "end_calls", got["consultation"]
    )
    assert status == 302
    for socket in (desk, caller):
        hangup = await receive_type(socket, "hangup")
        assert hangup == {
            "type": "hangup",
            "by": "operator",
            "reason": "ended_by_operator",
        }
    call = await Consultation.objects.aget(pk=got["consultation"])
    assert (call.outcome, call.ended_by) == ("completed", "operator")
    # The desk is free for the next caller at once.
    second = await caller_socket()
    await second.send_json_to(join_frame())
    await receive_type(second, "queued")
    await desk.send_json_to({"type": "accept"})
    await receive_type(desk, "caller")
    for socket in (desk, caller, second):
        await socket.disconnect()


async def test_remove_from_queue_refuses_the_caller_and_updates_the_desk(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    await caller.send_json_to(join_frame())
    queued = await receive_type(caller, "queued")
    while not (await receive_type(desk, "queue"))["callers"]:
        pass

    status = await sync_to_async(admin_action)(
        "/admin/consult/ticket/", "remove_from_queue", queued["ticket"]
    )
    assert status == 302
    refused = await receive_type(caller, "refused")
    assert refused["reason"]
    # Removed by staff, perhaps for cause: no place to carry to another queue.
    assert "move_token" not in refused
    assert (await receive_type(desk, "queue"))["callers"] == []
    ticket = await Ticket.objects.aget(pk=queued["ticket"])
    assert ticket.state == "ended"
    history = await Consultation.objects.aget(ticket_id=ticket.pk)
    assert (history.outcome, history.ended_by) == ("refused", "operator")
    for socket in (desk, caller):
        await socket.disconnect()


async def test_an_active_consultation_cannot_be_deleted_from_the_admin(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)

    def delete_it():
        client = lead()
        page = client.get(f"/admin/consult/consultation/{got['consultation']}/delete/")
        assert page.status_code == 403
        client.post(
            "/admin/consult/consultation/",
            {
                "action": "delete_selected",
                "_selected_action": [str(got["consultation"])],
                "post": "yes",
            },
        )

    await sync_to_async(delete_it)()
    call = await Consultation.objects.aget(pk=got["consultation"])
    assert call.outcome == "active"
    for socket in (desk, caller):
        await socket.disconnect()
