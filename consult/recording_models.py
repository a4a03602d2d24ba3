"""Recordings of consultations, and the receipt of each party's consent.

Imported by `consult.models`, so that Django finds the models there; kept
apart because they are one feature's (docs/recording.md).
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Recording(models.Model):
    """One recording of a consultation, from the consultant's request to the file.

    A consultation may hold several (stopping is final, asking again makes a
    new one), at most one of them asked or running at a time.
    """

    class State(models.TextChoices):
        ASKED = "asked"  # the consultant asked; the caller has not answered
        DECLINED = "declined"  # the caller said no: nothing was recorded
        RECORDING = "recording"  # both consented: chunks are accepted
        STOPPED = "stopped"  # stopped; the file is still to be assembled
        ASSEMBLING = "assembling"
        READY = "ready"  # the file is stored, its hash bound to the consents
        FAILED = "failed"  # nothing usable was received, or storage failed
        DELETED = "deleted"  # the file is gone; the receipt stays

    consultation = models.ForeignKey(
        "consult.Consultation",
        on_delete=models.SET_NULL,
        null=True,
        related_name="recordings",
        verbose_name=_("consultation"),
    )
    state = models.CharField(
        max_length=10,
        choices=State.choices,
        default=State.ASKED,
        db_index=True,
        verbose_name=_("state"),
    )
    with_video = models.BooleanField(default=False, verbose_name=_("with video"))
    requested_at = models.DateTimeField(verbose_name=_("requested at"))
    started_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("started at")
    )
    stopped_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("stopped at")
    )
    stopped_by = models.CharField(
        max_length=10, blank=True, verbose_name=_("stopped by")
    )
    stop_reason = models.CharField(
        max_length=200, blank=True, verbose_name=_("stop reason")
    )
    # The assembled file, in the `recordings` storage (settings.STORAGES).
    file_name = models.CharField(
        max_length=200, blank=True, verbose_name=_("file name")
    )
    content_type = models.CharField(
        max_length=60, blank=True, verbose_name=_("content type")
    )
    size_bytes = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("size (bytes)")
    )
    duration_seconds = models.FloatField(
        null=True, blank=True, verbose_name=_("duration (seconds)")
    )
    sha256 = models.CharField(max_length=64, blank=True, verbose_name=_("sha256"))
    assembled_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("assembled at")
    )
    deleted_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("deleted at")
    )
    # Who deleted the file: a user's name, or "retention" for the rule.
    deleted_by = models.CharField(
        max_length=150, blank=True, verbose_name=_("deleted by")
    )

    class Meta:
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["consultation"],
                condition=Q(state__in=["asked", "recording"]),
                name="one_open_recording_per_consultation",
            )
        ]

    def __str__(self):
        return f"Recording {self.pk} ({self.state})"


class RecordingConsent(models.Model):
    """A receipt: who was asked, what they were shown, when, from where, and
    what they answered."""

    class Answer(models.TextChoices):
        ACCEPTED = "accepted"
        DECLINED = "declined"

    recording = models.ForeignKey(
        Recording,
        on_delete=models.CASCADE,
        related_name="consents",
        verbose_name=_("recording"),
    )
    party = models.CharField(
        max_length=10, verbose_name=_("party")
    )  # "caller" or "consultant"
    # The caller's ticket id, or the consultant's user name.
    who = models.CharField(max_length=150, verbose_name=_("who"))
    text_shown = models.TextField(verbose_name=_("text shown"))
    text_version = models.CharField(max_length=20, verbose_name=_("text version"))
    answer = models.CharField(
        max_length=8, choices=Answer.choices, verbose_name=_("answer")
    )
    answered_at = models.DateTimeField(verbose_name=_("answered at"))
    address = models.CharField(max_length=45, blank=True, verbose_name=_("address"))

    class Meta:
        verbose_name = _("recording consent")
        verbose_name_plural = _("recording consents")
        ordering = ["answered_at", "id"]

    def __str__(self):
        return f"{self.party} {self.answer} recording {self.recording_id}"


class RecordingChunk(models.Model):
    """One uploaded piece of a recording, until the file is assembled."""

    recording = models.ForeignKey(
        Recording,
        on_delete=models.CASCADE,
        related_name="chunks",
        verbose_name=_("recording"),
    )
    seq = models.PositiveIntegerField(verbose_name=_("seq"))
    # The recorder session (a new one after a reload of the desk): each starts
    # a new stream with its own header.
    part = models.CharField(max_length=40, verbose_name=_("part"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    size_bytes = models.PositiveIntegerField(verbose_name=_("size (bytes)"))

    class Meta:
        verbose_name = _("recording chunk")
        verbose_name_plural = _("recording chunks")
        ordering = ["seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["recording", "seq"], name="one_chunk_per_seq"
            )
        ]

    def __str__(self):
        return f"{self.recording_id}#{self.seq}"


__all__ = ["Recording", "RecordingChunk", "RecordingConsent"]
