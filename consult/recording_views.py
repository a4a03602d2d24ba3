"""Recordings over HTTP: the desk's chunk uploads, and the file for the admin.

The file is never served by the web server or a storage URL: only `play`
sends it, to staff holding `consult.view_recording`, with range requests so
that a browser can seek (docs/recording.md).
"""

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .events import publish_on_commit
from .models import Recording
from .services import recordings

RANGE = re.compile(r"bytes=(\d*)-(\d*)")
BLOCK = 64 * 1024


def _refused(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


@require_POST
def chunk(request, recording_id: int, seq: int):
    """POST the raw bytes of chunk `seq` of a running recording of the logged-in
    consultant's call; headers `X-Recording-Part` (the recorder session) and
    `Content-Type` (the recorder's mimeType). 201 taken, 200 already held;
    else a JSON {code, message} with 4xx, or 507 when the storage failed (the
    recording is then stopped and both parties are told)."""
    if not request.user.is_authenticated:
        return _refused(401, "not_logged_in", "Log in as the consultant.")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.CONSULT_RECORDING_CHUNK_MAX_BYTES:
        return _refused(413, "bad_size", "The chunk is too large.")
    try:
        stored = recordings.chunk_store(
            user_id=request.user.pk,
            recording_id=recording_id,
            seq=seq,
            part=request.headers.get("X-Recording-Part", ""),
            content_type=request.content_type or "",
            data=request.body,
        )
    except recordings.ChunkRefused as refusal:
        return _refused(refusal.status, refusal.code, refusal.message)
    except recordings.StorageFailed as failure:
        publish_on_commit(failure.events)
        return _refused(507, "storage_unavailable", "The storage failed.")
    return JsonResponse({"seq": stored.seq}, status=200 if stored.duplicate else 201)


def _staff_with(request, permission: str) -> None:
    """PermissionDenied unless the user is active staff holding `permission`
    (a permission alone, given to a non-staff account by mistake, is not enough:
    recordings are the admin's, docs/recording.md)."""
    user = request.user
    if not (user.is_active and user.is_staff and user.has_perm(permission)):
        raise PermissionDenied


def _ranged(size: int, header: str):
    """(status, first byte, last byte) of a `Range: bytes=a-b` header. An
    invalid range (b before a) is ignored, an unsatisfiable one (a past the
    end) is 416 (RFC 9110, 14.1.1 and 14.2)."""
    match = RANGE.fullmatch(header.strip()) if header else None
    if match is None or not any(match.groups()):
        return 200, 0, size - 1
    start, end = match.groups()
    if start and end and int(end) < int(start):
        return 200, 0, size - 1
    if start == "":
        first, last = max(size - int(end), 0), size - 1
    else:
        first, last = int(start), min(int(end) if end else size - 1, size - 1)
    if first > last or first >= size:
        return 416, 0, 0
    return 206, first, last


def _stream(file, first: int, last: int):
    try:
        file.seek(first)
        left = last - first + 1
        while left > 0:
            block = file.read(min(BLOCK, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        file.close()


@require_GET
@login_required
def play(request, recording_id: int):
    """The recording's file (`?download=1`: as an attachment), for staff with
    `consult.view_recording`; honours one `Range` of bytes."""
    _staff_with(request, "consult.view_recording")
    recording = get_object_or_404(Recording, pk=recording_id, state="ready")
    store = recordings.storage()
    try:
        file = store.open(recording.file_name, "rb")
    except FileNotFoundError:
        raise Http404 from None
    size = recording.size_bytes or store.size(recording.file_name)
    status, first, last = _ranged(size, request.headers.get("Range", ""))
    if status == 416:
        file.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    response = StreamingHttpResponse(
        _stream(file, first, last),
        status=status,
        content_type=recording.content_type or "application/octet-stream",
    )
    response["Accept-Ranges"] = "bytes"
    response["Content-Length"] = str(last - first + 1)
    if status == 206:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    if request.GET.get("download"):
        name = recording.file_name.rsplit("/", 1)[-1]
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@login_required
def delete(request, recording_id: int):
    """Delete the file (the receipt stays and says who and when), for staff
    with `consult.delete_recording`; back to the consultation's page."""
    _staff_with(request, "consult.delete_recording")
    recording = get_object_or_404(Recording, pk=recording_id)
    if recordings.recording_delete(
        recording_id=recording.pk, by=request.user.get_username()
    ):
        messages.success(request, _("The recording was deleted; its receipt stays."))
    else:
        messages.warning(request, _("That recording has no file to delete."))
    if recording.consultation_id is None:
        return HttpResponseRedirect(reverse("admin:index"))
    page = reverse(
        "admin:consult_consultation_change", args=[recording.consultation_id]
    )
    return HttpResponseRedirect(page)
