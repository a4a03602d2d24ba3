"""Recordings in an S3-compatible bucket (django-storages), against s3rver, a
real S3 HTTP server on the local disk (scripts/ensure-s3rver.sh)."""

import hashlib
import socket
import subprocess
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from config.settings import recording_storage
from consult import services
from consult.models import Recording
from consult.services import recordings
from tests.consult.conftest import DESK
from tests.consult.test_recordings import ask, consent, record_tones
from tests.live import ROOT

S3RVER = ROOT / ".tools/s3rver/node_modules/.bin/s3rver"
BUCKET = "recordings"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def bucket(settings, tmp_path):
    """The recordings storage, an S3 bucket as the environment would set it."""
    if not S3RVER.exists():
        subprocess.run(["bash", str(ROOT / "scripts/ensure-s3rver.sh")], check=True)
    port = free_port()
    server = subprocess.Popen(
        [str(S3RVER), "-d", str(tmp_path), "-a", "127.0.0.1", "-p", str(port),
         "--configure-bucket", BUCKET, "--silent"],
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "s3rver did not start"
            time.sleep(0.1)
    environment = {
        "CONSULT_RECORDING_S3_BUCKET": BUCKET,
        "CONSULT_RECORDING_S3_ENDPOINT": f"http://127.0.0.1:{port}",
        "CONSULT_RECORDING_S3_REGION": "us-east-1",
        "CONSULT_RECORDING_S3_ACCESS_KEY": "S3RVER",
        "CONSULT_RECORDING_S3_SECRET_KEY": "S3RVER",
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": recording_storage(lambda name: environment.get(name, "")),
    }
    yield recordings.storage()
    server.terminate()
    server.wait(10)


def objects(store) -> list[str]:
    found = []
    for page in store.bucket.meta.client.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET
    ):
        found += [item["Key"] for item in page.get("Contents", [])]
    return found


def test_a_recording_goes_to_the_bucket_and_is_served_from_it(
    call, desk_client, bucket, tmp_path
):
    assert type(bucket).__name__ == "S3Storage"
    recording_id = ask()
    consent(recording_id)
    record_tones(desk_client, recording_id, tmp_path, seconds=(2, 1))
    assert len(objects(bucket)) == 6  # the chunks, until the file is made
    services.recording_stop(channel=DESK, party="consultant")
    assert recordings.recording_assemble(recording_id=recording_id)
    recording = Recording.objects.get()
    assert objects(bucket) == [recording.file_name]
    with bucket.open(recording.file_name, "rb") as stored:
        data = stored.read()
    assert hashlib.sha256(data).hexdigest() == recording.sha256
    assert recording.duration_seconds == pytest.approx(3, abs=0.5)

    auditor = Client()
    staff = get_user_model().objects.create_user("auditor", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_recording", "delete_recording"])
    )
    auditor.force_login(staff)
    part = auditor.get(
        f"/recordings/{recording.pk}/file", headers={"Range": "bytes=100-199"}
    )
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == data[100:200]

    assert auditor.post(f"/recordings/{recording.pk}/delete/").status_code == 302
    assert objects(bucket) == []
    assert Recording.objects.get().deleted_by == "auditor"
