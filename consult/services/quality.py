"""Call quality: fold each browser's stats summary into its call's aggregates.

A socket writes only into the consultation it holds right now (found by its
channel name, as every service finds it), never one a frame names; the
sample itself is dropped once folded in (docs/operations.md).
"""

from typing import TypedDict

from django.db import transaction
from django.utils import timezone

from consult import errors
from consult.events import Result
from consult.models import CallQuality, Consultation

from .shared import ACTIVE, Party

# Decoded video frames per second under which playing video counts as frozen.
FROZEN_FPS = 1.0


# One `stats` frame's fields, checked and clamped by signaling.messages: rtt,
# jitter (ms), loss (percent, 0-100), in, out (kbit/s), fps, frames (decoded
# video frames so far), each a float or None; cand, proto ("" if unknown).
StatsSample = TypedDict(
    "StatsSample",
    {
        "rtt": float | None,
        "loss": float | None,
        "jitter": float | None,
        "in": float | None,
        "out": float | None,
        "fps": float | None,
        "frames": float | None,
        "cand": str,
        "proto": str,
    },
    total=False,
)


def rtt_bucket(rtt_ms: float) -> int:
    """The histogram bucket of a round-trip time: its lower bound in ms, 1 ms
    wide below 100 ms, 10 ms below 1 s, 100 ms above (at most ~700 buckets)."""
    ms = int(rtt_ms)
    if ms < 100:
        return ms
    if ms < 1000:
        return ms - ms % 10
    return ms - ms % 100


def _held_call(channel: str, party: str) -> int:
    calls = Consultation.objects.filter(outcome=ACTIVE)
    if party == Party.CALLER:
        calls = calls.filter(ticket__caller_channel=channel)
    else:
        calls = calls.filter(consultant_channel=channel)
    found = list(calls.values_list("pk", flat=True)[:1]) if channel else []
    if not found:
        raise errors.NotInCall
    return found[0]


@transaction.atomic
def quality_record(*, channel: str, party: str, sample: StatsSample) -> Result[None]:
    """Fold one stats summary from `party`'s socket into the aggregates of the
    call that socket holds; `NotInCall` if it holds none."""
    call_id = _held_call(channel, party)
    CallQuality.objects.get_or_create(consultation_id=call_id)
    quality = CallQuality.objects.select_for_update().get(consultation_id=call_id)
    call = Consultation.objects.only("accepted_at", "media_connected_at").get(
        pk=call_id
    )
    _fold(quality, call, party, sample)
    quality.save()
    return Result()


def _fold(
    quality: CallQuality, call: Consultation, party: str, sample: StatsSample
) -> None:
    quality.samples += 1
    media = sample.get("in") or sample.get("frames") or call.media_connected_at
    if quality.accept_to_media_ms is None and media and call.accepted_at:
        first_media = call.media_connected_at or timezone.now()
        spent = (first_media - call.accepted_at).total_seconds() * 1000
        quality.accept_to_media_ms = max(0, round(spent))
    who = "caller" if party == Party.CALLER else "consultant"
    if sample.get("cand"):
        setattr(quality, f"{who}_candidate", sample["cand"])
        setattr(quality, f"{who}_protocol", sample.get("proto", ""))
        quality.relayed = quality.relayed or sample["cand"] == "relay"
    rtt = sample.get("rtt")
    if rtt is not None:
        bucket = str(rtt_bucket(rtt))
        quality.rtt_histogram[bucket] = quality.rtt_histogram.get(bucket, 0) + 1
        quality.rtt_worst_ms = max(quality.rtt_worst_ms or 0, round(rtt))
    loss = sample.get("loss")
    if loss is not None:
        quality.loss_sum_pct += loss
        quality.loss_samples += 1
        quality.loss_worst_pct = max(quality.loss_worst_pct or 0.0, loss)
    jitter = sample.get("jitter")
    if jitter is not None:
        quality.jitter_worst_ms = max(quality.jitter_worst_ms or 0, round(jitter))
    if sample.get("in") is not None or sample.get("out") is not None:
        quality.in_kbps_sum += sample.get("in") or 0.0
        quality.out_kbps_sum += sample.get("out") or 0.0
        quality.kbps_samples += 1
    fps, frames = sample.get("fps"), sample.get("frames")
    if fps is not None and frames:
        frozen = fps < FROZEN_FPS
        was = getattr(quality, f"{who}_frozen")
        if frozen and not was:
            quality.freezes += 1
        setattr(quality, f"{who}_frozen", frozen)
