"""The consultation's admin page: its recordings, each with its consent
receipts, a player, a download link and deletion (docs/recording.md)."""

from django.urls import reverse

from .models import Recording


class RecordingsOnConsultation:
    """Mixed into the consultation's ModelAdmin: the receipts under its fields."""

    change_form_template = "consult/admin/consultation_change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "recordings": self.recordings(request, object_id),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def recordings(self, request, object_id) -> list[dict]:
        may_view = request.user.has_perm("consult.view_recording")
        may_delete = request.user.has_perm("consult.delete_recording")
        if not (may_view or may_delete):
            return []
        rows = []
        found = Recording.objects.filter(consultation_id=object_id).prefetch_related(
            "consents"
        )
        for recording in found:
            ready = recording.state == Recording.State.READY
            file_url = reverse("recording-file", args=[recording.pk])
            rows.append(
                {
                    "recording": recording,
                    "consents": list(recording.consents.all()),
                    "file_url": file_url if ready and may_view else "",
                    "delete_url": reverse("recording-delete", args=[recording.pk])
                    if ready and may_delete
                    else "",
                }
            )
        return rows
