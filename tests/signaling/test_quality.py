"""Call-quality summaries and feedback over the sockets: checked, bounded, folded
into the right consultation only, rated once by that call's caller."""

import json

import pytest
from asgiref.sync import sync_to_async

from consult.models import CallFeedback, CallQuality
from tests.factories import make_consultant
from tests.signaling.conftest import caller_socket, desk_socket, receive_type
from tests.signaling.test_caller_consumer import call_between, expect_error

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = {
    "type": "stats",
    "rtt": 40.4,
    "loss": 0.5,
    "jitter": 3,
    "in": 900,
    "out": 850.5,
    "fps": 29.9,
    "frames": 300,
    "cand": "host",
    "proto": "udp",
}


@pytest.fixture
async def ada(transactional_db):
    return await sync_to_async(make_consultant)("ada")


async def settle(socket):
    """Frames are handled in order: after the pong, the earlier ones are done."""
    await socket.send_json_to({"type": "ping"})
    await receive_type(socket, "pong")


async def quality(call_id) -> CallQuality:
    return await CallQuality.objects.aget(consultation_id=call_id)


async def test_both_sides_stats_fold_into_their_calls_aggregates(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)

    await caller.send_json_to(SAMPLE)
    await desk.send_json_to(SAMPLE | {"rtt": 80, "cand": "relay", "proto": "tcp"})
    await settle(caller)
    await settle(desk)

    q = await quality(got["consultation"])
    assert q.samples == 2
    assert (q.caller_candidate, q.caller_protocol) == ("host", "udp")
    assert (q.consultant_candidate, q.consultant_protocol) == ("relay", "tcp")
    assert q.relayed is True
    assert q.rtt_histogram == {"40": 1, "80": 1}
    assert (q.rtt_median_ms, q.rtt_worst_ms) == (40, 80)
    assert q.loss_mean_pct == 0.5
    assert q.in_kbps_mean == 900
    assert q.accept_to_media_ms is not None and q.accept_to_media_ms >= 0
    # Stats are answered by nothing.
    assert await caller.receive_nothing(timeout=0.2)
    await desk.disconnect()
    await caller.disconnect()


async def test_out_of_range_figures_are_clamped_and_bad_shapes_refused(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)

    await caller.send_json_to(SAMPLE | {"rtt": 10**9, "loss": 250, "in": -5})
    await settle(caller)
    q = await quality(got["consultation"])
    assert q.rtt_worst_ms == 60_000
    assert q.loss_worst_pct == 100
    assert q.in_kbps_sum == 0

    for bad in (
        {"rtt": "fast"},
        {"loss": True},
        {"cand": "carrier-pigeon"},
        {"fps": [1]},
    ):
        await caller.send_json_to(SAMPLE | bad)
        await expect_error(caller, "bad_message")
    # NaN is JSON to Python's parser, not a number we keep.
    await caller.send_to(text_data=json.dumps(SAMPLE).replace("40.4", "NaN"))
    await expect_error(caller, "bad_message")
    # Bounded size, whatever the padding.
    await caller.send_json_to(SAMPLE | {"padding": "x" * 600})
    await expect_error(caller, "bad_message")
    assert (await quality(got["consultation"])).samples == 1
    await desk.disconnect()
    await caller.disconnect()


async def test_a_flood_of_stats_is_dropped_beyond_the_allowance(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)
    for _ in range(10):
        await caller.send_json_to(SAMPLE)
    await settle(caller)
    # The burst of three is kept; the rest dropped without a word.
    assert (await quality(got["consultation"])).samples == 3
    assert await caller.receive_nothing(timeout=0.2)
    await desk.disconnect()
    await caller.disconnect()


async def test_stats_outside_a_call_write_nothing(ada):
    caller = await caller_socket()
    await caller.send_json_to(SAMPLE)
    await settle(caller)
    assert await CallQuality.objects.acount() == 0
    await caller.disconnect()


async def test_stats_reach_only_the_senders_own_call(ada):
    await sync_to_async(make_consultant)("bea")
    ada_desk, bea_desk = await desk_socket("ada"), await desk_socket("bea")
    first, second = await caller_socket(), await caller_socket()
    got_first = await call_between(ada_desk, first)
    await second.send_json_to(
        {
            "type": "join",
            "consultant": "bea",
            "name": "Cy",
            "offer": got_first["offer"],
        }
    )
    await receive_type(second, "queued")
    await bea_desk.send_json_to({"type": "accept"})
    got_second = await receive_type(bea_desk, "caller")

    # A consultation named in the frame is ignored: the socket's own call counts.
    await second.send_json_to(SAMPLE | {"consultation": got_first["consultation"]})
    await settle(second)
    assert not await CallQuality.objects.filter(
        consultation_id=got_first["consultation"]
    ).aexists()
    assert (await quality(got_second["consultation"])).samples == 1
    for socket in (ada_desk, bea_desk, first, second):
        await socket.disconnect()


async def test_the_caller_rates_the_call_once_after_it_ended(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)
    call_id = got["consultation"]
    rating = {"type": "feedback", "consultation": call_id, "rating": 4}

    # Not while the call is on.
    await caller.send_json_to(rating)
    await expect_error(caller, "feedback_refused")
    await desk.send_json_to({"type": "hangup"})
    await receive_type(caller, "hangup")

    await caller.send_json_to(rating | {"comment": "  <b>Clear</b> answers  "})
    assert await receive_type(caller, "feedback_noted") == {
        "type": "feedback_noted",
        "consultation": call_id,
    }
    await caller.send_json_to(rating | {"rating": 1})
    await expect_error(caller, "feedback_refused")
    feedback = await CallFeedback.objects.aget(consultation_id=call_id)
    # Kept as text; the pages show it escaped.
    assert (feedback.rating, feedback.comment) == (4, "<b>Clear</b> answers")
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": 4.5}, {"comment": "x" * 501}):
        await caller.send_json_to(rating | bad)
        await expect_error(caller, "bad_message")
    await desk.disconnect()
    await caller.disconnect()


async def test_only_that_calls_caller_may_rate_it(ada):
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)
    await caller.send_json_to({"type": "hangup"})
    await receive_type(desk, "hangup")

    stranger = await caller_socket()
    await stranger.send_json_to(
        {"type": "feedback", "consultation": got["consultation"], "rating": 1}
    )
    await expect_error(stranger, "feedback_refused")
    assert not await CallFeedback.objects.filter(rating__isnull=False).aexists()
    # Its own caller may, after hanging up itself.
    await caller.send_json_to(
        {"type": "feedback", "consultation": got["consultation"], "rating": 5}
    )
    await receive_type(caller, "feedback_noted")
    for socket in (desk, caller, stranger):
        await socket.disconnect()


async def test_the_consultant_flags_only_their_own_ended_calls(ada):
    await sync_to_async(make_consultant)("bea")
    desk, caller = await desk_socket("ada"), await caller_socket()
    got = await call_between(desk, caller)
    flag = {"type": "flag", "consultation": got["consultation"], "flag": "audio"}

    await desk.send_json_to(flag)
    await expect_error(desk, "feedback_refused")  # still active
    await desk.send_json_to({"type": "hangup"})
    await receive_type(caller, "hangup")
    other = await desk_socket("bea")
    await other.send_json_to(flag)
    await expect_error(other, "feedback_refused")
    await desk.send_json_to(flag | {"flag": "dropped"})
    await receive_type(desk, "flag_noted")
    await desk.send_json_to(flag | {"flag": "bored"})
    await expect_error(desk, "bad_message")
    feedback = await CallFeedback.objects.aget(consultation_id=got["consultation"])
    assert feedback.flag == "dropped"
    for socket in (desk, caller, other):
        await socket.disconnect()
