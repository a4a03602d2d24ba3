"""Recording with both consents: receipts, the chunk endpoint's refusals, the
file joined by ffmpeg, its view's permissions and ranges, and the retention."""

import hashlib
import io
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from consult import services
from consult.models import Recording, RecordingChunk, RecordingConsent
from consult.services import recordings
from tests.consult.conftest import CALLER, DESK
from tests.factories import make_consultant

WEBM = "audio/webm;codecs=opus"


@pytest.fixture
def store(settings, tmp_path) -> Path:
    """A private recordings directory for the test."""
    location = tmp_path / "recordings"
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def ask() -> int:
    return recordings.recording_request(channel=DESK, address="10.0.0.1").value


def consent(recording_id: int, accept_it: bool = True):
    return recordings.recording_answer(
        channel=CALLER, recording_id=recording_id, accept=accept_it, address="10.0.0.2"
    )


def upload(client, recording_id, seq, data=b"x" * 100, part="p1", **headers):
    return client.post(
        f"/recordings/{recording_id}/chunks/{seq}/",
        data=data,
        content_type=headers.pop("content_type", WEBM),
        headers={"X-Recording-Part": part, **headers},
    )


def files_in(location: Path) -> list[Path]:
    return [p for p in location.rglob("*") if p.is_file()] if location.exists() else []


def tone(path: Path, seconds: float, frequency: int) -> bytes:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
         f"sine=frequency={frequency}:duration={seconds}", "-c:a", "libopus",
         str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration:stream=codec_type", "-of", "json", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return json.loads(out.stdout)


# --- consent -----------------------------------------------------------------------


def test_asking_keeps_the_consultants_receipt_and_asks_the_caller(call, consultant):
    result = recordings.recording_request(channel=DESK, address="10.0.0.1")
    asks = [e for e in result.events if e.frame["type"] == "record_ask"]
    assert [e.channel for e in asks] == [CALLER]
    text = asks[0].frame["text"]
    assert consultant.name in text and "30 days" in text
    receipt = RecordingConsent.objects.get()
    assert (receipt.party, receipt.who, receipt.answer) == (
        "consultant",
        "ada",
        "accepted",
    )
    assert (receipt.text_shown, receipt.text_version) == (text, "1")
    assert receipt.address == "10.0.0.1"
    assert Recording.objects.get().state == "asked"


def test_a_second_request_while_one_is_open_is_refused(call):
    ask()
    with pytest.raises(recordings.RecordingOpen):
        ask()


def test_the_callers_answer_is_a_receipt_with_the_text_they_saw(call):
    recording_id = ask()
    shown = RecordingConsent.objects.get().text_shown
    result = consent(recording_id)
    frames = {e.channel: e.frame for e in result.events}
    assert frames[DESK]["state"] == frames[CALLER]["state"] == "on"
    receipt = RecordingConsent.objects.get(party="caller")
    assert (receipt.answer, receipt.text_shown, receipt.address) == (
        "accepted",
        shown,
        "10.0.0.2",
    )
    assert Recording.objects.get().state == "recording"


def test_declining_records_nothing_and_chunks_are_refused(call, desk_client, store):
    recording_id = ask()
    consent(recording_id, accept_it=False)
    assert Recording.objects.get().state == "declined"
    assert RecordingConsent.objects.get(party="caller").answer == "declined"
    response = upload(desk_client, recording_id, 0)
    assert response.status_code == 409
    assert response.json()["code"] == "not_recording"
    assert not RecordingChunk.objects.exists()
    assert files_in(store) == []


# --- the chunk endpoint's refusals ----------------------------------------------


def test_a_chunk_before_the_caller_agreed_is_refused(call, desk_client, store):
    response = upload(desk_client, ask(), 0)
    assert (response.status_code, response.json()["code"]) == (409, "not_recording")
    assert files_in(store) == []


def test_a_chunk_from_another_consultant_is_refused(call, store):
    recording_id = ask()
    consent(recording_id)
    other = Client()
    other.force_login(make_consultant("grace").user)
    response = upload(other, recording_id, 0)
    assert (response.status_code, response.json()["code"]) == (403, "not_yours")
    assert files_in(store) == []


def test_an_anonymous_chunk_is_refused(call, store):
    recording_id = ask()
    consent(recording_id)
    assert upload(Client(), recording_id, 0).status_code == 401
    assert files_in(store) == []


def test_a_chunk_without_the_csrf_token_is_refused(call, consultant, store):
    recording_id = ask()
    consent(recording_id)
    client = Client(enforce_csrf_checks=True)
    client.force_login(consultant.user)
    assert upload(client, recording_id, 0).status_code == 403
    assert files_in(store) == []


def test_a_chunk_too_large_empty_or_of_another_type_is_refused(
    call, desk_client, store, settings
):
    settings.CONSULT_RECORDING_CHUNK_MAX_BYTES = 50
    recording_id = ask()
    consent(recording_id)
    assert upload(desk_client, recording_id, 0, data=b"x" * 51).status_code == 413
    assert upload(desk_client, recording_id, 0, data=b"").status_code == 413
    as_text = upload(desk_client, recording_id, 0, data=b"x", content_type="text/html")
    assert as_text.status_code == 415
    assert (
        upload(desk_client, recording_id, 0, data=b"x", part="../x").status_code == 400
    )
    assert files_in(store) == []


def test_chunks_out_of_order_within_the_window_are_taken_beyond_it_refused(
    call, desk_client, store
):
    recording_id = ask()
    consent(recording_id)
    assert upload(desk_client, recording_id, 1).status_code == 201
    assert upload(desk_client, recording_id, 0).status_code == 201
    assert upload(desk_client, recording_id, 0).status_code == 200  # a retry
    far = upload(desk_client, recording_id, 2 + recordings.SEQ_WINDOW)
    assert (far.status_code, far.json()["code"]) == (422, "out_of_window")
    assert list(RecordingChunk.objects.values_list("seq", flat=True)) == [0, 1]
    assert len(files_in(store)) == 2


def test_after_the_callers_stop_chunks_are_refused_at_once(call, desk_client, store):
    recording_id = ask()
    consent(recording_id)
    assert upload(desk_client, recording_id, 0).status_code == 201
    stopped = services.recording_stop(channel=CALLER, party="caller")
    frames = {e.channel: e.frame for e in stopped.events}
    assert frames[DESK] == {
        "type": "recording",
        "recording": recording_id,
        "state": "stopped",
        "by": "caller",
    }
    response = upload(desk_client, recording_id, 1)
    assert (response.status_code, response.json()["code"]) == (409, "not_recording")
    assert RecordingChunk.objects.count() == 1


@pytest.fixture
def broken_store(settings, tmp_path):
    """A recordings storage that cannot write: its directory is under a file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker / "recordings")},
        },
    }


def test_a_failing_storage_stops_the_recording_and_tells_both(
    call, consultant, broken_store
):
    recording_id = ask()
    consent(recording_id)
    with pytest.raises(recordings.StorageFailed) as failed:
        recordings.chunk_store(
            user_id=consultant.user_id,
            recording_id=recording_id,
            seq=0,
            part="p1",
            content_type=WEBM,
            data=b"x",
        )
    told = {e.channel: e.frame["reason"] for e in failed.value.events}
    assert told == {DESK: "storage_unavailable", CALLER: "storage_unavailable"}
    recording = Recording.objects.get()
    assert (recording.state, recording.stopped_by) == ("stopped", "system")
    assert not RecordingChunk.objects.exists()


def test_a_failing_storage_answers_507_and_the_call_goes_on(
    call, desk_client, broken_store
):
    recording_id = ask()
    consent(recording_id)
    response = upload(desk_client, recording_id, 0)
    assert (response.status_code, response.json()["code"]) == (
        507,
        "storage_unavailable",
    )
    assert Recording.objects.get().state == "stopped"
    assert Recording.objects.get().consultation.outcome == "active"


# --- the file ---------------------------------------------------------------------


def record_tones(client, recording_id, tmp_path, seconds=(2, 3)) -> None:
    """Upload one stream per second count, as a desk that reloaded between them
    would: each split into byte chunks, under its own part."""
    seq = 0
    for index, length in enumerate(seconds):
        data = tone(tmp_path / f"tone{index}.webm", length, 440 + 220 * index)
        third = len(data) // 3 + 1
        for start in range(0, len(data), third):
            response = upload(
                client, recording_id, seq, data=data[start : start + third],
                part=f"part{index}",
            )  # fmt: skip
            assert response.status_code == 201, response.content
            seq += 1


def test_the_parts_are_joined_into_one_file_bound_to_the_receipt(
    call, desk_client, store, tmp_path
):
    recording_id = ask()
    consent(recording_id)
    record_tones(desk_client, recording_id, tmp_path)
    services.recording_stop(channel=DESK, party="consultant")
    assert recordings.recording_assemble(recording_id=recording_id)
    recording = Recording.objects.get()
    assert recording.state == "ready"
    path = store / recording.file_name
    probe = ffprobe(path)
    assert [s["codec_type"] for s in probe["streams"]] == ["audio"]
    assert abs(float(probe["format"]["duration"]) - 5) < 0.5
    assert recording.duration_seconds == pytest.approx(5, abs=0.5)
    assert recording.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert recording.size_bytes == path.stat().st_size
    # The chunks are gone once the file exists.
    assert not RecordingChunk.objects.exists()
    assert files_in(store) == [path]


def test_the_end_of_the_call_stops_it_and_the_repair_pass_joins_it(
    call, desk_client, store, tmp_path
):
    recording_id = ask()
    consent(recording_id)
    record_tones(desk_client, recording_id, tmp_path, seconds=(2,))
    services.consultation_end(channel=CALLER, party="caller")
    assert Recording.objects.get().state == "stopped"
    assert upload(desk_client, recording_id, 9).status_code == 409
    services.sweep()
    assert Recording.objects.get().state == "ready"


def test_a_stop_before_any_chunk_fails_with_nothing_recorded(call, store):
    recording_id = ask()
    consent(recording_id)
    services.recording_stop(channel=DESK, party="consultant")
    assert not recordings.recording_assemble(recording_id=recording_id)
    recording = Recording.objects.get()
    assert (recording.state, recording.stop_reason) == (
        "failed",
        "nothing was recorded",
    )


@pytest.fixture
def ready(call, desk_client, store, tmp_path) -> Recording:
    recording_id = ask()
    consent(recording_id)
    record_tones(desk_client, recording_id, tmp_path, seconds=(2,))
    services.recording_stop(channel=DESK, party="consultant")
    recordings.recording_assemble(recording_id=recording_id)
    return Recording.objects.get()


def test_retention_deletes_the_file_and_the_receipt_says_so(ready, store, settings):
    settings.CONSULT_RECORDING_RETENTION_DAYS = 7
    Recording.objects.update(assembled_at=timezone.now() - timedelta(days=6))
    call_command("purge_recordings", stdout=io.StringIO())
    assert Recording.objects.get().state == "ready"
    Recording.objects.update(assembled_at=timezone.now() - timedelta(days=8))
    call_command("purge_recordings", stdout=io.StringIO())
    recording = Recording.objects.get()
    assert (recording.state, recording.deleted_by) == ("deleted", "retention")
    assert recording.deleted_at is not None
    assert files_in(store) == []
    assert RecordingConsent.objects.filter(recording=recording).count() == 2


def test_the_repair_pass_applies_the_retention_too(ready, store, settings):
    settings.CONSULT_RECORDING_RETENTION_DAYS = 1
    services.sweep(now=timezone.now() + timedelta(days=2))
    assert Recording.objects.get().deleted_by == "retention"
    assert files_in(store) == []


def staff(username: str, *perms: str, is_staff: bool = True):
    user = get_user_model().objects.create_user(
        username=username, password="x", is_staff=is_staff
    )
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_the_file_needs_view_recording_and_a_login(ready):
    url = f"/recordings/{ready.pk}/file"
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert staff("clerk", "view_consultation").get(url).status_code == 403
    # The permission alone, on an account that is not staff, is not enough.
    outsider = staff("outsider", "view_recording", is_staff=False)
    assert outsider.get(url).status_code == 403


def test_the_file_is_served_whole_and_in_ranges(ready, store):
    client = staff("auditor", "view_recording")
    data = (store / ready.file_name).read_bytes()
    whole = client.get(f"/recordings/{ready.pk}/file")
    assert whole.status_code == 200
    assert b"".join(whole.streaming_content) == data
    assert whole["Accept-Ranges"] == "bytes"
    part = client.get(f"/recordings/{ready.pk}/file", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 10-99/{len(data)}"
    assert b"".join(part.streaming_content) == data[10:100]
    tail = client.get(f"/recordings/{ready.pk}/file", headers={"Range": "bytes=-5"})
    assert b"".join(tail.streaming_content) == data[-5:]
    beyond = f"bytes={len(data)}-"
    assert (
        client.get(
            f"/recordings/{ready.pk}/file", headers={"Range": beyond}
        ).status_code
        == 416
    )
    # An invalid range (the end before the start) is ignored: the whole file.
    backwards = client.get(
        f"/recordings/{ready.pk}/file", headers={"Range": "bytes=5-3"}
    )
    assert backwards.status_code == 200
    assert b"".join(backwards.streaming_content) == data
    download = client.get(f"/recordings/{ready.pk}/file?download=1")
    assert download["Content-Disposition"].startswith("attachment;")


def test_the_admin_page_shows_receipts_player_download_and_deletes(ready, store):
    client = staff("lead", "view_consultation", "view_recording", "delete_recording")
    page = client.get(f"/admin/consult/consultation/{ready.consultation_id}/change/")
    html = page.content.decode()
    assert html.count('data-testid="consent-receipt"') == 2
    assert 'data-testid="recording-player"' in html
    assert 'data-testid="recording-download"' in html
    assert ready.sha256 in html
    deleted = client.post(f"/recordings/{ready.pk}/delete/")
    assert deleted.status_code == 302
    recording = Recording.objects.get()
    assert (recording.state, recording.deleted_by) == ("deleted", "lead")
    assert files_in(store) == []
    again = client.get(f"/admin/consult/consultation/{ready.consultation_id}/change/")
    assert again.content.decode().count('data-testid="consent-receipt"') == 2
    assert 'data-testid="recording-player"' not in again.content.decode()


def test_deleting_needs_delete_recording(ready, store):
    client = staff("auditor", "view_recording")
    assert client.post(f"/recordings/{ready.pk}/delete/").status_code == 403
    outsider = staff("outsider", "view_recording", "delete_recording", is_staff=False)
    assert outsider.post(f"/recordings/{ready.pk}/delete/").status_code == 403
    assert Recording.objects.get().state == "ready"
