"""Recording with both consents, in real Chromium: the consultant asks, the
caller answers, the desk records and uploads, the server joins one file."""

import hashlib
import json
import subprocess
import time

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from consult.models import Recording
from tests.browser.conftest import off_the_loop
from tests.browser.pages import expect_media_flowing, expect_state
from tests.browser.test_call import connect_call

pytestmark = pytest.mark.browser


def read(django_db_blocker, function, *args):
    with django_db_blocker.unblock():
        return off_the_loop(function, *args)


def latest_recording(consultant) -> Recording | None:
    return Recording.objects.filter(consultation__consultant=consultant).first()


def wait_for_file(django_db_blocker, consultant, timeout=30) -> Recording:
    """The recording once the repair pass has joined it (or failed to)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        recording = read(django_db_blocker, latest_recording, consultant)
        if recording and recording.state in ("ready", "failed"):
            return recording
        time.sleep(0.5)
    raise AssertionError(f"not assembled: {recording and recording.state}")


def probe(path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration:stream=codec_type", "-of", "json", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def ask_and_accept(desk, caller, consultant):
    desk.get_by_test_id("record-start").click()
    prompt = caller.get_by_test_id("consent-prompt")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text(consultant.name)
    expect(prompt).to_contain_text("30 days")
    caller.get_by_test_id("consent-accept").click()
    expect(prompt).to_be_hidden()
    expect(caller.get_by_test_id("recording-indicator")).to_be_visible()
    expect(desk.get_by_test_id("recording-indicator")).to_be_visible()


def stop_and_hang_up(desk, caller):
    desk.get_by_test_id("record-stop").click()
    expect(desk.get_by_test_id("recording-indicator")).to_have_count(0)
    expect(caller.get_by_test_id("recording-indicator")).to_have_count(0)
    stopped = time.monotonic()
    desk.get_by_test_id("hangup").click()
    expect_state(caller, "ended")
    return stopped


def make_lead():
    return get_user_model().objects.create_superuser(
        "recording-lead", password="a-lead-password"
    )


def test_a_consented_recording_is_one_valid_file_that_the_admin_plays(
    new_page, consultant, workdir, django_db_blocker
):
    desk, caller = connect_call(new_page, consultant)
    expect_media_flowing(desk, "audio")
    ask_and_accept(desk, caller, consultant)
    started = time.monotonic()
    time.sleep(8)
    stopped = stop_and_hang_up(desk, caller)

    recording = wait_for_file(django_db_blocker, consultant)
    assert recording.state == "ready", recording.stop_reason
    path = workdir / "recordings" / recording.file_name
    info = probe(path)
    assert "audio" in [s["codec_type"] for s in info["streams"]]
    assert abs(float(info["format"]["duration"]) - (stopped - started)) < 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recording.sha256
    consents = read(
        django_db_blocker,
        lambda: list(recording.consents.values_list("party", "answer")),
    )
    assert sorted(consents) == [("caller", "accepted"), ("consultant", "accepted")]

    read(django_db_blocker, make_lead)
    admin = new_page()
    # The admin's pages link no icon: the browser's guess is no error of ours.
    admin.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page = f"/admin/consult/consultation/{recording.consultation_id}/change/"
    admin.goto(f"/admin/login/?next={page}")
    admin.fill("#id_username", "recording-lead")
    admin.fill("#id_password", "a-lead-password")
    admin.get_by_role("button", name="Log in").click()
    expect(admin.get_by_test_id("consent-receipt")).to_have_count(2)
    expect(admin.get_by_test_id("recording-download")).to_be_visible()
    player = admin.get_by_test_id("recording-player")
    expect(player).to_be_visible()
    # Muted, the browser lets a script start it; it plays past the first second.
    player.evaluate("audio => { audio.muted = true; return audio.play(); }")
    deadline = time.monotonic() + 10
    while player.evaluate("audio => audio.currentTime") < 1:
        assert time.monotonic() < deadline, "the admin's player did not play"
        time.sleep(0.2)


def test_a_declined_recording_records_nothing_and_chunks_are_refused(
    new_page, consultant, django_db_blocker
):
    desk, caller = connect_call(new_page, consultant)
    desk.get_by_test_id("record-start").click()
    expect(caller.get_by_test_id("consent-prompt")).to_be_visible()
    caller.get_by_test_id("consent-decline").click()
    expect(desk.locator("[data-recording-note]")).to_contain_text("declined")
    expect(desk.get_by_test_id("recording-indicator")).to_have_count(0)
    expect(caller.get_by_test_id("recording-indicator")).to_have_count(0)
    expect_state(caller, "in-call")  # declining ends nothing

    recording = read(django_db_blocker, latest_recording, consultant)
    assert recording.state == "declined"
    # The desk's own session and CSRF token, outside the page (whose console
    # would log the refusal as an error).
    refused = desk.request.post(
        f"/recordings/{recording.pk}/chunks/0/",
        data=b"\x1aE\xdf\xa3",
        headers={
            "X-CSRFToken": desk.locator("[data-recording-csrf]").input_value(),
            "X-Recording-Part": "forged",
            "Content-Type": "audio/webm",
        },
    )
    assert (refused.status, refused.json()["code"]) == (409, "not_recording")
    assert read(django_db_blocker, lambda: recording.chunks.count()) == 0


def test_a_desk_reload_mid_recording_still_gives_one_file_in_order(
    new_page, consultant, workdir, django_db_blocker
):
    desk, caller = connect_call(new_page, consultant)
    expect_media_flowing(desk, "audio")
    ask_and_accept(desk, caller, consultant)
    started = time.monotonic()
    time.sleep(5)
    desk.reload()
    expect_state(desk, "in-call", timeout=20_000)
    # A reloaded page runs its audio only after a gesture on it.
    desk.get_by_test_id("call-state").click()
    expect(desk.get_by_test_id("recording-indicator")).to_be_visible()
    expect(desk.locator("[data-recording-note]")).to_have_text("Recording.")
    time.sleep(5)
    stopped = stop_and_hang_up(desk, caller)

    recording = wait_for_file(django_db_blocker, consultant)
    assert recording.state == "ready", recording.stop_reason
    path = workdir / "recordings" / recording.file_name
    duration = float(probe(path)["format"]["duration"])
    # Both parts, less the gap of the reload, in one file.
    assert 7 < duration <= stopped - started + 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recording.sha256
