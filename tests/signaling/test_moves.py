"""Never a dead end: a refused caller moves keeping their join time; transfers."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from consult.models import Consultation, Ticket
from tests.factories import make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type
from tests.signaling.test_caller_consumer import expect_error, join_frame

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def floor(transactional_db):
    for slug in ("ada", "grace", "alan"):
        await sync_to_async(make_consultant)(slug)


async def queued_caller(consultant: str, name: str, **extra):
    caller = await caller_socket()
    await caller.send_json_to(join_frame(consultant=consultant, name=name, **extra))
    return caller, await receive_type(caller, "queued")


async def refused_caller(desk, consultant: str, name: str):
    caller, queued = await queued_caller(consultant, name)
    await desk.send_json_to({"type": "refuse", "ticket": queued["ticket"]})
    refused = await receive_type(caller, "refused")
    return caller, queued, refused["move_token"]


async def test_a_refused_caller_moves_ahead_of_those_who_joined_later(floor):
    ada = await desk_socket("ada")
    # Mia joins Ada first; Zoe joins Grace after her.
    mia, _, move_token = await refused_caller(ada, "ada", "Mia")
    zoe, zoe_queued = await queued_caller("grace", "Zoe")
    assert zoe_queued["position"] == 1

    await mia.send_json_to(
        join_frame(consultant="grace", name="Mia", move_token=move_token)
    )
    moved = await receive_type(mia, "queued")

    assert moved["position"] == 1
    assert (await receive_type(zoe, "position"))["position"] == 2
    grace = await desk_socket("grace")
    await grace.send_json_to({"type": "accept"})
    taken = await receive_type(grace, "caller")
    assert taken["name"] == "Mia"
    for socket in (ada, mia, zoe, grace):
        await socket.disconnect()


async def test_the_new_desk_sees_where_a_moved_caller_came_from(floor):
    ada = await desk_socket("ada")
    mia, _, move_token = await refused_caller(ada, "ada", "Mia")
    grace = await desk_socket("grace")
    await mia.send_json_to(
        join_frame(consultant="grace", name="Mia", move_token=move_token)
    )
    await receive_type(mia, "queued")
    callers = []
    while not callers:
        callers = (await receive_type(grace, "queue"))["callers"]
    assert callers[0]["came_from"] == {"slug": "ada", "name": "Ada"}
    for socket in (ada, mia, grace):
        await socket.disconnect()


async def test_a_move_token_works_once_and_not_back_into_the_same_queue(floor):
    ada = await desk_socket("ada")
    mia, _, move_token = await refused_caller(ada, "ada", "Mia")

    await mia.send_json_to(
        join_frame(consultant="ada", name="Mia", move_token=move_token)
    )
    await expect_error(mia, "cannot_move")
    await mia.send_json_to(
        join_frame(consultant="grace", name="Mia", move_token=move_token)
    )
    await receive_type(mia, "queued")
    other = await caller_socket()
    await other.send_json_to(
        join_frame(consultant="alan", name="Mia", move_token=move_token)
    )
    await expect_error(other, "cannot_move")
    assert await Ticket.objects.filter(consultant__slug="alan").acount() == 0
    for socket in (ada, mia, other):
        await socket.disconnect()


async def test_leaving_and_rejoining_gives_no_seniority(floor):
    """A cancel carries no move token: the only way back in is at the back."""
    leaver, _ = await queued_caller("ada", "Leo")
    await leaver.send_json_to({"type": "cancel"})
    assert set(await receive_type(leaver, "cancelled")) == {"type"}
    forged = "A" * 43
    await leaver.send_json_to(
        join_frame(consultant="grace", name="Leo", move_token=forged)
    )
    await expect_error(leaver, "cannot_move")
    await leaver.disconnect()


async def test_a_move_token_expires(floor, settings):
    settings.CONSULT_MOVE_SECONDS = 60
    ada = await desk_socket("ada")
    mia, queued, move_token = await refused_caller(ada, "ada", "Mia")
    await Ticket.objects.filter(pk=queued["ticket"]).aupdate(
        ended_at=timezone.now() - timedelta(seconds=61)
    )
    await mia.send_json_to(
        join_frame(consultant="grace", name="Mia", move_token=move_token)
    )
    await expect_error(mia, "cannot_move")
    for socket in (ada, mia):
        await socket.disconnect()


async def test_a_failed_move_keeps_the_right_to_move(floor):
    """Grace is offline: the move is refused and may be tried elsewhere."""
    await sync_to_async(make_consultant)("off", presence="offline")
    ada = await desk_socket("ada")
    mia, _, move_token = await refused_caller(ada, "ada", "Mia")
    await mia.send_json_to(
        join_frame(consultant="off", name="Mia", move_token=move_token)
    )
    await expect_error(mia, "consultant_unavailable")
    await mia.send_json_to(
        join_frame(consultant="grace", name="Mia", move_token=move_token)
    )
    assert (await receive_type(mia, "queued"))["position"] == 1
    for socket in (ada, mia):
        await socket.disconnect()


async def test_a_transfer_carries_the_note_and_the_join_time(floor):
    ada = await desk_socket("ada")
    grace = await desk_socket("grace")
    early, early_queued = await queued_caller("ada", "Early")
    late, _ = await queued_caller("grace", "Late")

    await ada.send_json_to(
        {
            "type": "transfer",
            "ticket": early_queued["ticket"],
            "to": "grace",
            "note": "Wants <b>tax</b> advice",
        }
    )

    transferred = await receive_type(early, "transferred")
    assert transferred["consultant"] == {"slug": "grace", "name": "Grace"}
    callers = []
    while len(callers) != 2:
        callers = (await receive_type(grace, "queue"))["callers"]
    assert [c["name"] for c in callers] == ["Early", "Late"]
    assert callers[0]["came_from"] == {"slug": "ada", "name": "Ada"}
    assert callers[0]["note"] == "Wants <b>tax</b> advice"
    for socket in (ada, grace, early, late):
        await socket.disconnect()


@pytest.mark.parametrize(
    ("to", "code"),
    [("ada", "bad_transfer"), ("nobody", "bad_transfer"), ("off", "bad_transfer")],
)
async def test_a_bad_transfer_changes_nothing(floor, to, code):
    await sync_to_async(make_consultant)("off", presence="offline")
    ada = await desk_socket("ada")
    caller, queued = await queued_caller("ada", "Stay")
    await ada.send_json_to({"type": "transfer", "ticket": queued["ticket"], "to": to})
    await expect_error(ada, code)
    ticket = await Ticket.objects.select_related("consultant").aget(pk=queued["ticket"])
    assert ticket.consultant.slug == "ada" and ticket.came_from_id is None
    for socket in (ada, caller):
        await socket.disconnect()


async def test_a_desk_cannot_transfer_another_consultants_caller(floor):
    ada = await desk_socket("ada")
    caller, queued = await queued_caller("grace", "Theirs")
    await ada.send_json_to(
        {"type": "transfer", "ticket": queued["ticket"], "to": "alan"}
    )
    await expect_error(ada, "ticket_gone")
    for socket in (ada, caller):
        await socket.disconnect()


async def test_a_caller_transferred_during_a_call_joins_the_colleague_in_their_place(
    floor,
):
    ada, grace = await desk_socket("ada"), await desk_socket("grace")
    caller, _ = await queued_caller("ada", "Early Eve")
    later, _ = await queued_caller("grace", "Later Lou")
    await ada.send_json_to({"type": "accept"})
    taken = await receive_type(ada, "caller")

    await ada.send_json_to(
        {"type": "transfer_call", "to": "grace", "note": "Pension question"}
    )

    told = await receive_type(caller, "transferred")
    assert told["consultant"] == {"slug": "grace", "name": "Grace"}
    assert (await receive_type(ada, "transferred"))["consultant"]["slug"] == "grace"
    call = await Consultation.objects.aget(pk=taken["consultation"])
    assert (call.outcome, call.ended_by) in {
        ("completed", "consultant"),
        ("failed", "consultant"),
    }
    assert call.end_reason == "Transferred to Grace"
    # The caller's page joins Grace's queue with the token: ahead of Lou.
    await caller.send_json_to(
        join_frame(consultant="grace", name="Early Eve", move_token=told["move_token"])
    )
    assert (await receive_type(caller, "queued"))["position"] == 1
    callers = []
    while len(callers) != 2:
        callers = (await receive_type(grace, "queue"))["callers"]
    assert callers[0]["name"] == "Early Eve"
    assert callers[0]["came_from"] == {"slug": "ada", "name": "Ada"}
    assert callers[0]["note"] == "Pension question"
    for socket in (ada, grace, caller, later):
        await socket.disconnect()


async def test_a_call_transfer_to_nobody_keeps_the_call(floor):
    ada = await desk_socket("ada")
    caller, _ = await queued_caller("ada", "Stay")
    await ada.send_json_to({"type": "accept"})
    taken = await receive_type(ada, "caller")
    await ada.send_json_to({"type": "transfer_call", "to": "ada"})
    await expect_error(ada, "bad_transfer")
    call = await Consultation.objects.aget(pk=taken["consultation"])
    assert call.outcome == "active"
    for socket in (ada, caller):
        await socket.disconnect()


async def test_refusals_in_turn_do_not_lead_back_to_the_front_of_the_first_queue(
    floor,
):
    ada, grace = await desk_socket("ada"), await desk_socket("grace")
    mia, _, move_token = await refused_caller(ada, "ada", "Mia")
    await mia.send_json_to(
        join_frame(consultant="grace", name="Mia", move_token=move_token)
    )
    moved = await receive_type(mia, "queued")
    await grace.send_json_to({"type": "refuse", "ticket": moved["ticket"]})
    again = (await receive_type(mia, "refused"))["move_token"]

    await mia.send_json_to(join_frame(consultant="ada", name="Mia", move_token=again))
    await expect_error(mia, "cannot_move")
    await mia.send_json_to(join_frame(consultant="alan", name="Mia", move_token=again))
    assert (await receive_type(mia, "queued"))["position"] == 1
    for socket in (ada, grace, mia):
        await socket.disconnect()


async def test_a_call_transfers_token_is_good_for_the_chosen_colleague_only(floor):
    ada = await desk_socket("ada")
    caller, _ = await queued_caller("ada", "Eve")
    await ada.send_json_to({"type": "accept"})
    await receive_type(ada, "caller")
    await ada.send_json_to({"type": "transfer_call", "to": "grace"})
    token = (await receive_type(caller, "transferred"))["move_token"]

    await caller.send_json_to(
        join_frame(consultant="alan", name="Eve", move_token=token)
    )
    await expect_error(caller, "cannot_move")
    await caller.send_json_to(
        join_frame(consultant="grace", name="Eve", move_token=token)
    )
    await receive_type(caller, "queued")
    for socket in (ada, caller):
        await socket.disconnect()


async def test_no_chain_of_refusals_leads_back_into_a_queue_that_refused(floor):
    await sync_to_async(make_consultant)("ida")
    desks = {slug: await desk_socket(slug) for slug in ("ada", "grace", "alan")}
    mia, _, token = await refused_caller(desks["ada"], "ada", "Mia")
    for slug in ("grace", "alan"):
        await mia.send_json_to(
            join_frame(consultant=slug, name="Mia", move_token=token)
        )
        moved = await receive_type(mia, "queued")
        await desks[slug].send_json_to({"type": "refuse", "ticket": moved["ticket"]})
        token = (await receive_type(mia, "refused"))["move_token"]

    for slug in ("ada", "grace"):
        await mia.send_json_to(
            join_frame(consultant=slug, name="Mia", move_token=token)
        )
        await expect_error(mia, "cannot_move")
    await mia.send_json_to(join_frame(consultant="ida", name="Mia", move_token=token))
    await receive_type(mia, "queued")
    for socket in (*desks.values(), mia):
        await socket.disconnect()
