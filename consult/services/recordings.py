"""Recording a consultation with both parties' consent (docs/recording.md).

The consultant asks (`recording_request`), the caller answers
(`recording_answer`); each answer is a `RecordingConsent` row, the receipt.
Only while both stand does `chunk_store` take the chunks that the
consultant's browser uploads; either party stops (`recording_stop`), and so
does the end of the call (`recordings_close`). The repair pass then joins
the chunks into one file (`recording_assemble`) and, after
`CONSULT_RECORDING_RETENTION_DAYS`, deletes it (`recording_delete`); the
receipt stays.

This module imports no other service module: `shared.end_call` calls it.
"""

import hashlib
import json
import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from consult.errors import ConsultError
from consult.events import Event, Result, SendFrame
from consult.models import (
    Consultation,
    Recording,
    RecordingChunk,
    RecordingConsent,
)

log = logging.getLogger(__name__)

State = Recording.State
OPEN = [State.ASKED, State.RECORDING]
# Bump when the wording of `consent_text` changes: each receipt names the
# version its party was shown.
CONSENT_VERSION = "1"
# How far ahead of the next expected chunk one may arrive (uploads retried
# out of order); beyond it a chunk is refused.
SEQ_WINDOW = 8
MAX_SEQ = 1_000_000
# The containers a browser's MediaRecorder makes, and their files' suffixes.
CONTAINERS = {"audio/webm": "webm", "video/webm": "webm", "audio/mp4": "mp4"}
CONTAINERS["video/mp4"] = "mp4"
PART = re.compile(r"[A-Za-z0-9_-]{1,40}")
# ffmpeg's run on one recording, at most.
ASSEMBLY_TIMEOUT_SECONDS = 300


class NotRecording(ConsultError):
    code = "not_recording"
    message = gettext_lazy("No recording is asked for or running in this call.")


class RecordingOpen(ConsultError):
    code = "recording_open"
    message = gettext_lazy("A recording is already asked for or running in this call.")


class ChunkRefused(Exception):
    """An upload refused: `status` is the HTTP status, `code` a stable word."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class StorageFailed(Exception):
    """The storage refused a chunk; the recording is stopped, `events` tell both."""

    def __init__(self, events: list[Event]):
        super().__init__("the recordings storage failed")
        self.events = events


def storage():
    """The `recordings` storage of settings.STORAGES."""
    return storages["recordings"]


def consent_text(*, consultant_name: str, with_video: bool) -> str:
    """What the caller is shown, and what their receipt keeps word for word, in
    the active language (`recording_request` makes it in the caller's)."""
    if with_video:
        what = gettext("your voice, their voice and your video")
    else:
        what = gettext("both voices")
    return gettext(
        "%(name)s asks to record this call: %(what)s. The recording is made by "
        "%(name)s's browser and kept by this service for %(days)s days, then "
        "deleted. Either of you can stop it at any time. Declining does not end "
        "the call."
    ) % {
        "name": consultant_name,
        "what": what,
        "days": settings.CONSULT_RECORDING_RETENTION_DAYS,
    }


def _call_of(channel: str, party: str) -> Consultation:
    """The active call this socket holds as `party`, locked; `NotRecording` if none."""
    calls = Consultation.objects.select_for_update(of=("self",)).select_related(
        "ticket", "consultant__user"
    )
    calls = calls.filter(outcome=Consultation.Outcome.ACTIVE)
    if party == "caller":
        calls = calls.filter(ticket__caller_channel=channel)
    else:
        calls = calls.filter(consultant_channel=channel)
    call = calls.first() if channel else None
    if call is None:
        raise NotRecording(gettext_lazy("This connection is not in a call."))
    return call


def _both(call: Consultation, frame: dict) -> list[Event]:
    """`frame` for both parties of `call` (nothing for one that is away)."""
    channels = [call.consultant_channel, call.ticket.caller_channel]
    return [SendFrame(c, frame, call=call.id) for c in channels if c]


def _asked_text(recording: Recording) -> str:
    """The text the caller was asked with: the one in the consultant's receipt."""
    return recording.consents.get(party="consultant").text_shown


def _ask_frame(recording: Recording, call: Consultation, text: str) -> dict:
    return {
        "type": "record_ask",
        "recording": recording.id,
        "text": text,
        "version": CONSENT_VERSION,
        "video": recording.with_video,
        "retention_days": settings.CONSULT_RECORDING_RETENTION_DAYS,
        "consultant": call.consultant.name,
    }


@transaction.atomic
def recording_request(*, channel: str, address: str = "") -> Result[int]:
    """The consultant asks to record this desk's call; their request is their
    consent (a receipt row). The caller gets `record_ask` with the text to
    show; both get `recording` {state: "asked"}. The value is the recording's
    id. Raises `NotRecording` (no call) or `RecordingOpen`.
    """
    call = _call_of(channel, "consultant")
    now = timezone.now()
    with_video = settings.CONSULT_RECORDING_VIDEO and not call.audio_only
    # In the caller's language: the words they read are the words the receipt
    # keeps, whatever language the consultant's desk speaks.
    with translation.override(call.ticket.language or settings.LANGUAGE_CODE):
        text = consent_text(consultant_name=call.consultant.name, with_video=with_video)
    try:
        with transaction.atomic():
            recording = Recording.objects.create(
                consultation=call, with_video=with_video, requested_at=now
            )
    except IntegrityError:
        raise RecordingOpen from None
    RecordingConsent.objects.create(
        recording=recording,
        party="consultant",
        who=call.consultant.user.get_username(),
        text_shown=text,
        text_version=CONSENT_VERSION,
        answer=RecordingConsent.Answer.ACCEPTED,
        answered_at=now,
        address=address,
    )
    state = {"type": "recording", "recording": recording.id, "state": "asked"}
    events = _both(call, state)
    if call.ticket.caller_channel:
        ask = _ask_frame(recording, call, text)
        events.append(SendFrame(call.ticket.caller_channel, ask, call=call.id))
    return Result(recording.id, events)


@transaction.atomic
def recording_answer(
    *, channel: str, recording_id: int, accept: bool, address: str = ""
) -> Result[None]:
    """The caller's answer to `record_ask`, kept as a receipt row with the text
    they were shown. Both parties get `recording` {state: "on"} or
    {state: "declined"}; declining ends nothing else. Raises `NotRecording`
    when that recording is not waiting for this caller's answer."""
    call = _call_of(channel, "caller")
    recording = (
        Recording.objects.select_for_update()
        .filter(pk=recording_id, consultation=call, state=State.ASKED)
        .first()
    )
    if recording is None:
        raise NotRecording(
            gettext_lazy("That recording is not waiting for your answer.")
        )
    now = timezone.now()
    answer = RecordingConsent.Answer
    RecordingConsent.objects.create(
        recording=recording,
        party="caller",
        who=str(call.ticket_id),
        text_shown=_asked_text(recording),
        text_version=CONSENT_VERSION,
        answer=answer.ACCEPTED if accept else answer.DECLINED,
        answered_at=now,
        address=address,
    )
    if accept:
        recording.state, recording.started_at = State.RECORDING, now
    else:
        recording.state, recording.stopped_at = State.DECLINED, now
        recording.stopped_by = "caller"
    recording.save()
    frame = {
        "type": "recording",
        "recording": recording.id,
        "state": "on" if accept else "declined",
        "video": recording.with_video,
    }
    return Result(None, _both(call, frame))


def _stop(recording: Recording, *, by: str, reason: str, now: datetime) -> None:
    Recording.objects.filter(pk=recording.pk).update(
        state=State.STOPPED, stopped_at=now, stopped_by=by, stop_reason=reason
    )


@transaction.atomic
def recording_stop(*, channel: str, party: str) -> Result[None]:
    """Either party stops the recording (or withdraws the request): from now on
    no chunk is taken. Both get `recording` {state: "stopped", by}. Raises
    `NotRecording` when none is asked for or running."""
    call = _call_of(channel, party)
    recording = (
        Recording.objects.select_for_update()
        .filter(consultation=call, state__in=OPEN)
        .first()
    )
    if recording is None:
        raise NotRecording
    _stop(recording, by=party, reason="", now=timezone.now())
    frame = {"type": "recording", "recording": recording.id, "state": "stopped"}
    return Result(None, _both(call, {**frame, "by": party}))


def recordings_close(call: Consultation, *, by: str, now: datetime) -> None:
    """The call ends (in the caller's transaction): its open recording stops."""
    Recording.objects.filter(consultation=call, state__in=OPEN).update(
        state=State.STOPPED, stopped_at=now, stopped_by=by, stop_reason="call ended"
    )


def recording_status(*, consultation_id: int) -> dict | None:
    """The `recording` frame for a party that comes back to the call (a reload),
    with `next_seq` for the desk's uploads; None when none is open. A caller
    still to answer gets `record_ask` again (`ask`)."""
    recording = Recording.objects.filter(
        consultation_id=consultation_id, state__in=OPEN
    ).first()
    if recording is None:
        return None
    last = recording.chunks.aggregate(last=Max("seq"))["last"]
    frame = {
        "type": "recording",
        "recording": recording.id,
        "state": "on" if recording.state == State.RECORDING else "asked",
        "video": recording.with_video,
        "next_seq": 0 if last is None else last + 1,
    }
    if recording.state == State.ASKED:
        frame["ask"] = _ask_frame(
            recording, recording.consultation, _asked_text(recording)
        )
    return frame


# --- the chunks -----------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A chunk taken (or already held: `duplicate`)."""

    seq: int
    duplicate: bool = False


def _check(recording: Recording | None, *, user_id: int) -> Recording:
    if recording is None or recording.consultation is None:
        raise ChunkRefused(404, "unknown_recording", "No such recording.")
    call = recording.consultation
    if call.consultant.user_id != user_id:
        raise ChunkRefused(403, "not_yours", "This recording is not of your call.")
    if call.outcome != Consultation.Outcome.ACTIVE:
        raise ChunkRefused(409, "call_ended", "The call has ended.")
    if recording.state != State.RECORDING:
        raise ChunkRefused(409, "not_recording", "The recording is not running.")
    answers = set(
        recording.consents.filter(answer=RecordingConsent.Answer.ACCEPTED)
        .values_list("party", flat=True)
        .distinct()
    )
    if answers != {"caller", "consultant"}:
        raise ChunkRefused(403, "no_consent", "Both parties must consent first.")
    return recording


def chunk_store(
    *,
    user_id: int,
    recording_id: int,
    seq: int,
    part: str,
    content_type: str,
    data: bytes,
) -> Stored:
    """Keep one uploaded chunk of a running recording of this user's call.

    `seq` counts chunks from 0 across the whole recording; `part` names the
    recorder session (a new one after a reload of the desk); `content_type`
    is MediaRecorder's mimeType. Raises `ChunkRefused` (with its HTTP status)
    and stores nothing when the chunk is not this user's, the consents do not
    both stand, the recording is not running, `seq` is outside the window, or
    the chunk is empty or too large; `StorageFailed` after stopping the
    recording when the storage fails.
    """
    if not data or len(data) > settings.CONSULT_RECORDING_CHUNK_MAX_BYTES:
        raise ChunkRefused(413, "bad_size", "A chunk must be 1 byte to the limit.")
    if not PART.fullmatch(part):
        raise ChunkRefused(400, "bad_part", "The part must be a short token.")
    container = CONTAINERS.get(content_type.split(";")[0].strip().lower())
    if container is None:
        raise ChunkRefused(415, "bad_type", "Chunks must be WebM or MP4.")
    try:
        with transaction.atomic():
            recording = _check(
                Recording.objects.select_for_update(of=("self",))
                .select_related("consultation__consultant")
                .filter(pk=recording_id)
                .first(),
                user_id=user_id,
            )
            return _keep(recording, seq=seq, part=part, data=data, mime=content_type)
    except OSError:
        log.exception("recording %s: the storage failed; stopped", recording_id)
        raise StorageFailed(_storage_failed(recording_id)) from None


def _keep(recording: Recording, *, seq: int, part: str, data: bytes, mime: str):
    if recording.chunks.filter(seq=seq).exists():
        return Stored(seq, duplicate=True)
    last = recording.chunks.aggregate(last=Max("seq"))["last"]
    expected = 0 if last is None else last + 1
    if not 0 <= seq < min(expected + SEQ_WINDOW, MAX_SEQ):
        raise ChunkRefused(
            422, "out_of_window", f"Expected a chunk from {expected} on, not {seq}."
        )
    name = storage().save(
        f"chunks/{recording.pk}/{seq:07d}-{part}.part", ContentFile(data)
    )
    RecordingChunk.objects.create(
        recording=recording, seq=seq, part=part, name=name, size_bytes=len(data)
    )
    if not recording.content_type:
        Recording.objects.filter(pk=recording.pk).update(content_type=mime[:60])
    return Stored(seq)


@transaction.atomic
def _storage_failed(recording_id: int) -> list[Event]:
    recording = (
        Recording.objects.select_for_update(of=("self",))
        .select_related("consultation__ticket")
        .filter(pk=recording_id, state=State.RECORDING)
        .first()
    )
    if recording is None:
        return []
    _stop(recording, by="system", reason="storage unavailable", now=timezone.now())
    frame = {
        "type": "recording",
        "recording": recording.id,
        "state": "stopped",
        "by": "system",
        "reason": "storage_unavailable",
    }
    return _both(recording.consultation, frame)


# --- the file -------------------------------------------------------------------


def recordings_to_assemble() -> QuerySet[Recording]:
    return Recording.objects.filter(state=State.STOPPED)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (fixed arguments, our own file names)
        args, capture_output=True, check=True, timeout=ASSEMBLY_TIMEOUT_SECONDS
    )


def _duration(path: Path) -> float | None:
    probe = _run(
        "ffprobe", "-v", "error", "-show_entries", "format=duration",
        "-of", "json", str(path),
    )  # fmt: skip
    value = json.loads(probe.stdout).get("format", {}).get("duration")
    return float(value) if value not in (None, "N/A") else None


def _segments(recording: Recording, workdir: Path, suffix: str) -> list[Path]:
    """One playable file per recorder session, in sequence order: each session's
    chunks joined byte for byte (one stream), then remuxed so that it has a
    duration; a session whose stream cannot be read (its header chunk was
    lost in a reload) is left out."""
    groups: list[list[RecordingChunk]] = []
    for chunk in recording.chunks.order_by("seq"):
        if groups and groups[-1][0].part == chunk.part:
            groups[-1].append(chunk)
        else:
            groups.append([chunk])
    segments = []
    for index, chunks in enumerate(groups):
        raw = workdir / f"raw{index}.{suffix}"
        with raw.open("wb") as out:
            for chunk in chunks:
                with storage().open(chunk.name, "rb") as piece:
                    shutil.copyfileobj(piece, out)
        fixed = workdir / f"segment{index}.{suffix}"
        try:
            _run("ffmpeg", "-v", "error", "-i", str(raw), "-c", "copy", str(fixed))
        except subprocess.CalledProcessError as error:
            log.warning("recording %s: part %s unreadable: %s", recording.pk,
                        chunks[0].part, error.stderr[-300:])  # fmt: skip
            continue
        segments.append(fixed)
    return segments


def recording_assemble(*, recording_id: int) -> bool:
    """Join a stopped recording's chunks into one file in the recordings storage
    and bind its size, duration and SHA-256 to the receipt (state `ready`), or
    mark it `failed` when nothing usable came. Runs ffmpeg outside any
    transaction; only one process wins the claim. True when it assembled."""
    claimed = Recording.objects.filter(pk=recording_id, state=State.STOPPED).update(
        state=State.ASSEMBLING
    )
    if not claimed:
        return False
    recording = Recording.objects.get(pk=recording_id)
    mime = recording.content_type or "audio/webm"
    suffix = CONTAINERS.get(mime.split(";")[0].strip().lower(), "webm")
    try:
        with tempfile.TemporaryDirectory(prefix="recording-") as tmp:
            workdir = Path(tmp)
            segments = _segments(recording, workdir, suffix)
            if not segments:
                return _fail(recording, "nothing was recorded")
            listing = workdir / "segments.txt"
            listing.write_text("".join(f"file '{s.name}'\n" for s in segments))
            final = workdir / f"final.{suffix}"
            _run(
                "ffmpeg", "-v", "error", "-f", "concat", "-safe", "0",
                "-i", str(listing), "-c", "copy", str(final),
            )  # fmt: skip
            digest = hashlib.sha256()
            with final.open("rb") as data:
                for block in iter(lambda: data.read(1 << 20), b""):
                    digest.update(block)
                data.seek(0)
                name = storage().save(
                    f"files/recording-{recording.pk}.{suffix}", File(data)
                )
            Recording.objects.filter(pk=recording.pk).update(
                state=State.READY,
                file_name=name,
                content_type=mime.split(";")[0].strip()[:60],
                size_bytes=final.stat().st_size,
                duration_seconds=_duration(final),
                sha256=digest.hexdigest(),
                assembled_at=timezone.now(),
            )
    except (OSError, subprocess.SubprocessError) as error:
        log.exception("recording %s could not be assembled", recording.pk)
        return _fail(recording, f"assembly failed: {type(error).__name__}")
    _drop_chunks(recording)
    return True


def _fail(recording: Recording, why: str) -> bool:
    Recording.objects.filter(pk=recording.pk).update(
        state=State.FAILED, stop_reason=why[:200]
    )
    _drop_chunks(recording)
    return False


def _drop_chunks(recording: Recording) -> None:
    for name in recording.chunks.values_list("name", flat=True):
        try:
            storage().delete(name)
        except OSError:
            log.warning("recording %s: chunk %s not deleted", recording.pk, name)
    recording.chunks.all().delete()


def recordings_assemble_due() -> int:
    """Assemble every stopped recording (the repair pass); the number assembled."""
    done = 0
    for pk in list(recordings_to_assemble().values_list("pk", flat=True)):
        try:
            done += recording_assemble(recording_id=pk)
        except Exception:
            log.exception("assembly of recording %s failed; the pass goes on", pk)
    return done


# --- deletion and retention ----------------------------------------------------------


def recordings_expired(now: datetime) -> QuerySet[Recording]:
    """Recordings whose file is older than CONSULT_RECORDING_RETENTION_DAYS."""
    kept = timedelta(days=settings.CONSULT_RECORDING_RETENTION_DAYS)
    return Recording.objects.filter(state=State.READY, assembled_at__lt=now - kept)


RETENTION = "retention"


def recording_delete(
    *, recording_id: int, by: str, now: datetime | None = None
) -> bool:
    """Delete a recording's file and note who (a user name, or "retention") and
    when in its receipt, which stays. False when there was no file to delete."""
    now = now or timezone.now()
    with transaction.atomic():
        recording = (
            Recording.objects.select_for_update()
            .filter(pk=recording_id, state=State.READY)
            .first()
        )
        if recording is None:
            return False
        if (
            by == RETENTION
            and not recordings_expired(now).filter(pk=recording_id).exists()
        ):
            return False
        Recording.objects.filter(pk=recording.pk).update(
            state=State.DELETED, deleted_at=now, deleted_by=by[:150]
        )
        # In the transaction: a storage that refuses keeps the row as it was.
        storage().delete(recording.file_name)
    return True


def recordings_purge(*, now: datetime | None = None) -> int:
    """Delete every file past the retention (`manage.py purge_recordings` and
    the repair pass); the number deleted."""
    now = now or timezone.now()
    deleted = 0
    for pk in list(recordings_expired(now).values_list("pk", flat=True)):
        try:
            deleted += recording_delete(recording_id=pk, by=RETENTION, now=now)
        except OSError:
            log.exception("recording %s past its retention not deleted", pk)
    return deleted
