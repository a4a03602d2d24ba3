"""The liveness check through real sockets, driven by the server's own repair pass:
a long waiter is asked `still_there`, keeps the place by answering `here`, and
loses it (`expired`) when nobody answers."""

import pytest
from asgiref.sync import sync_to_async

from consult.models import Consultation, Ticket
from consult.services.tickets import NOT_THERE_REASON
from tests.factories import OFFER, make_consultant
from tests.signaling.conftest import TIMEOUT, caller_socket, receive_type

pytestmark = pytest.mark.django_db(transaction=True)

ASK_AFTER = 1
ANSWER_WITHIN = 2


@pytest.fixture
async def ada(transactional_db, settings):
    settings.CONSULT_HEARTBEAT_SECONDS = 0.2
    settings.CONSULT_STILL_THERE_AFTER_SECONDS = ASK_AFTER
    settings.CONSULT_STILL_THERE_ANSWER_SECONDS = ANSWER_WITHIN
    # No desk in these tests: the consultant must not go offline meanwhile.
    settings.CONSULT_GRACE_SECONDS = 60
    from django.core.cache import cache

    await sync_to_async(cache.clear)()
    return await sync_to_async(make_consultant)("ada")


async def joined(name: str = "Bo"):
    caller = await caller_socket()
    await caller.send_json_to(
        {
            "type": "join",
            "consultant": "ada",
            "name": name,
            "offer": {"type": "offer", "sdp": OFFER},
        }
    )
    queued = await receive_type(caller, "queued")
    return caller, queued


async def test_an_answered_question_keeps_the_place_and_comes_again_later(ada):
    caller, queued = await joined()

    asked = await receive_type(caller, "still_there", wait=ASK_AFTER + 3)
    assert asked == {"type": "still_there", "answer_within_seconds": ANSWER_WITHIN}
    await caller.send_json_to({"type": "here"})
    assert await receive_type(caller, "noted") == {"type": "noted"}

    # Past the first question's deadline the place is still held, and the next
    # question comes one waiting period after the answer.
    again = await receive_type(caller, "still_there", wait=ASK_AFTER + 3)
    assert again["answer_within_seconds"] == ANSWER_WITHIN
    ticket = await Ticket.objects.aget(pk=queued["ticket"])
    assert ticket.state == "waiting"
    await caller.disconnect()


async def test_a_silent_caller_loses_the_place_and_is_told(ada):
    silent, queued = await joined("Silent")
    behind, _ = await joined("Behind")

    await receive_type(silent, "still_there", wait=ASK_AFTER + 3)
    await receive_type(behind, "still_there", wait=ASK_AFTER + 3)
    await behind.send_json_to({"type": "here"})
    await receive_type(behind, "noted")
    expired = await receive_type(silent, "expired", wait=ANSWER_WITHIN + 3)

    assert expired == {"type": "expired", "reason": "no_answer"}
    history = await Consultation.objects.aget(ticket_id=queued["ticket"])
    assert (history.outcome, history.end_reason) == ("abandoned", NOT_THERE_REASON)
    # The caller behind, who answered, moves up (and is asked again meanwhile).
    while (frame := await behind.receive_json_from(TIMEOUT))["type"] != "position":
        assert frame["type"] in {"consultants", "still_there"}, frame
    assert frame["position"] == 1
    await silent.send_json_to({"type": "here"})
    error = await receive_type(silent, "error")
    assert error["code"] == "not_queued"
    await silent.disconnect()
    await behind.disconnect()


async def test_a_reload_while_asked_is_asked_again_with_the_time_left(ada):
    old, queued = await joined()
    await receive_type(old, "still_there", wait=ASK_AFTER + 3)
    await old.disconnect()

    new = await caller_socket()
    await new.send_json_to({"type": "resume", "token": queued["token"]})
    assert (await receive_type(new, "queued"))["ticket"] == queued["ticket"]
    asked = await receive_type(new, "still_there")
    assert 0 <= asked["answer_within_seconds"] <= ANSWER_WITHIN
    await new.send_json_to({"type": "here"})
    await receive_type(new, "noted")
    assert (await Ticket.objects.aget(pk=queued["ticket"])).state == "waiting"
    await new.disconnect()
