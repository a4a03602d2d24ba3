"""The domain: consultants, their callers' tickets, and consultations (the history)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Connectivity(models.TextChoices):
    """What a caller's pre-call network check found (docs/connectivity.md)."""

    UNKNOWN = "", _("not checked")
    DIRECT = "direct", _("direct")
    RELAY = "relay", _("relay only")
    BLOCKED = "blocked", _("blocked")


class WatchdogStep(models.TextChoices):
    """The rungs of the in-call watchdog's ladder, in order (docs/connectivity.md)."""

    NONE = "", _("none")
    ICE_RESTART = "ice-restart", _("ICE restart")
    RELAY = "relay", _("relay")
    AUDIO_ONLY = "audio-only", _("audio only")
    CALLBACK = "callback", _("callback offered")


class Presence(models.TextChoices):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class ConsultantQuerySet(models.QuerySet):
    def serving(self) -> "ConsultantQuerySet":
        """Consultants callers may see and reach: the profile and its user active."""
        return self.filter(is_active=True, user__is_active=True)


class Consultant(models.Model):
    """Someone who takes calls from a queue of their own."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consultant"
    )
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=80)
    title = models.CharField(max_length=120, blank=True)
    max_queue = models.PositiveIntegerField(
        default=20, help_text="Callers who may wait at once; more are told queue_full."
    )
    is_active = models.BooleanField(
        default=True, help_text="Inactive consultants are hidden from callers."
    )
    presence = models.CharField(
        max_length=8, choices=Presence.choices, default=Presence.OFFLINE
    )
    # When the last desk socket closed; the consultant goes offline once this
    # is older than the grace period and no desk came back.
    desk_dropped_at = models.DateTimeField(null=True, blank=True)
    # Word from the consultant to everyone waiting in their queue, shown on
    # their pages until replaced or cleared (docs/protocol.md, queue_message).
    queue_message = models.CharField(max_length=280, blank=True)

    objects = ConsultantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class EmbedSite(models.Model):
    """A website allowed to embed the consulting bot (docs/embed.md).

    The allow-list: only active sites' origins may frame `/embed/…`, and
    `embed.js` on any other page shows nothing.
    """

    origin = models.CharField(
        max_length=200,
        unique=True,
        help_text="Scheme, host and port exactly as the browser sends them, "
        "e.g. https://shop.example.com (no path, no trailing slash).",
    )
    label = models.CharField(max_length=120)
    consultants = models.ManyToManyField(
        Consultant,
        blank=True,
        related_name="embed_sites",
        help_text="Whom the site may offer; none means every consultant.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["label"]

    def __str__(self):
        return f"{self.label} ({self.origin})"


class ServerProcess(models.Model):
    """A live server process; its sockets die with it when its heartbeat stops."""

    id = models.CharField(primary_key=True, max_length=32)
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField()
    # Shut down cleanly at this time: it closed its sockets itself, so their
    # clients reconnected at once (see services.liveness).
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Taken for dead and swept then. The row stays a while as a tombstone, so
    # that what the process still binds before it learns of it (its next
    # heartbeat) is swept too, should it then die.
    swept_at = models.DateTimeField(null=True, blank=True)
    # Its own channel, a member of the hub group: the repair pass takes it
    # out of the group when it takes the process for dead.
    channel = models.CharField(max_length=200, blank=True)

    def __str__(self):
        return self.id


class DeskSocket(models.Model):
    """One open desk (browser tab) of a consultant, for presence across processes."""

    consultant = models.ForeignKey(
        Consultant, on_delete=models.CASCADE, related_name="desk_sockets"
    )
    channel_name = models.CharField(max_length=200, unique=True)
    process = models.CharField(max_length=32, db_index=True)
    opened_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.channel_name


class Ticket(models.Model):
    """A caller's place in one consultant's queue, and the caller's side of a call."""

    class State(models.TextChoices):
        WAITING = "waiting"
        IN_CALL = "in_call"
        ENDED = "ended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consultant = models.ForeignKey(
        Consultant, on_delete=models.CASCADE, related_name="tickets"
    )
    caller_name = models.CharField(max_length=80)
    reason = models.CharField(max_length=500, blank=True)
    audio_only = models.BooleanField(default=False)
    connectivity = models.CharField(
        max_length=8, choices=Connectivity.choices, blank=True, default=""
    )
    # Signaling held for the consultant while the caller waits; erased when
    # the ticket leaves the queue.
    offer = models.TextField(blank=True)
    candidates = models.JSONField(default=list, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    state = models.CharField(
        max_length=8, choices=State.choices, default=State.WAITING, db_index=True
    )
    # The caller's socket: empty while it is away within its grace period.
    caller_channel = models.CharField(max_length=200, blank=True, db_index=True)
    caller_process = models.CharField(max_length=32, blank=True, db_index=True)
    # Where the caller joined from, for the cap on tickets waiting per address;
    # erased with the offer and candidates when the ticket ends.
    caller_address = models.CharField(max_length=45, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dropped_at = models.DateTimeField(null=True, blank=True)
    # When a long waiter was asked whether they are still there; cleared by
    # their answer (docs/protocol.md: the liveness check).
    still_there_asked_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # A refused caller (or one whose consultant went offline) may carry this
    # ticket's join time to another queue once: the hash of the `move_token`
    # sent with `refused`, cleared when used (services.moves).
    move_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # The consultant this caller moved or was transferred from, and their note.
    came_from = models.ForeignKey(
        Consultant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    transfer_note = models.CharField(max_length=280, blank=True)
    # "Tell me by e-mail when I am number `notify_place`": erased when the
    # ticket ends; `notified_at` makes sure it is sent once (services.notify).
    notify_email = models.EmailField(blank=True)
    notify_place = models.PositiveSmallIntegerField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "tickets (the live queue)"
        # Addresses are kept for the limits and the events log; only staff
        # given this permission see them in the admin.
        permissions = [("view_caller_address", "Can see callers' network addresses")]
        indexes = [
            models.Index(fields=["consultant", "state", "created_at"]),
            models.Index(fields=["caller_address", "state"]),
        ]

    def __str__(self):
        return f"{self.caller_name} for {self.consultant}"


class Consultation(models.Model):
    """The history of one caller's request: the call, or why there was none."""

    class Outcome(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        REFUSED = "refused"
        CANCELLED = "cancelled"
        ABANDONED = "abandoned"
        DISCONNECTED = "disconnected"
        # Accepted, but media never flowed between the two browsers.
        FAILED = "failed", "failed to connect"

    class Party(models.TextChoices):
        CALLER = "caller"
        CONSULTANT = "consultant"
        SYSTEM = "system"
        OPERATOR = "operator"

    consultant = models.ForeignKey(
        Consultant, on_delete=models.PROTECT, related_name="consultations"
    )
    ticket = models.OneToOneField(
        Ticket, on_delete=models.SET_NULL, null=True, related_name="consultation"
    )
    caller_name = models.CharField(max_length=80)
    reason = models.CharField(max_length=500, blank=True)
    audio_only = models.BooleanField(default=False)
    connectivity = models.CharField(
        max_length=8, choices=Connectivity.choices, blank=True, default=""
    )
    requested_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the consultant's answer reached the caller.",
    )
    media_connected_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a browser of the call first reported media connected.",
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    # The furthest rung of the watchdog's ladder the call needed, and the one
    # after which media flowed again (empty: never needed, never rescued).
    watchdog_step = models.CharField(
        max_length=12, choices=WatchdogStep.choices, blank=True, default=""
    )
    rescued_by = models.CharField(
        max_length=12, choices=WatchdogStep.choices, blank=True, default=""
    )
    ended_by = models.CharField(max_length=10, choices=Party.choices, blank=True)
    end_reason = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(
        max_length=12, choices=Outcome.choices, default=Outcome.ACTIVE, db_index=True
    )
    # The desk socket that holds the call: empty while it is away.
    consultant_channel = models.CharField(max_length=200, blank=True, db_index=True)
    consultant_process = models.CharField(max_length=32, blank=True, db_index=True)
    consultant_dropped_at = models.DateTimeField(null=True, blank=True)
    # When the caller's name and reason were erased (`services.privacy`): after
    # CONSULT_HISTORY_RETENTION_DAYS, or on an admin's request.
    anonymised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["consultant"],
                condition=Q(outcome="active"),
                name="one_active_consultation_per_consultant",
            ),
            models.CheckConstraint(
                condition=Q(outcome="active", ended_at__isnull=True)
                | (~Q(outcome="active") & Q(ended_at__isnull=False)),
                name="ended_at_set_once_not_active",
            ),
        ]
        permissions = [("operate_board", "Can act from the operations board")]

    def __str__(self):
        caller = self.caller_name or "An erased caller"
        return f"{caller} with {self.consultant} ({self.outcome})"

    @property
    def wait_seconds(self) -> float | None:
        end = self.accepted_at or self.ended_at
        return (end - self.requested_at).total_seconds() if end else None

    @property
    def talk_seconds(self) -> float | None:
        """From media connected to the end: None for a call that never connected."""
        if self.media_connected_at and self.ended_at:
            return (self.ended_at - self.media_connected_at).total_seconds()
        return None


class Callback(models.Model):
    """A caller who asked to be called back instead of waiting: shown on the
    consultant's desk until handled, then deleted (nothing of it is kept)."""

    consultant = models.ForeignKey(
        Consultant, on_delete=models.CASCADE, related_name="callbacks"
    )
    caller_name = models.CharField(max_length=80)
    contact = models.CharField(
        max_length=120, help_text="A phone number or an e-mail address."
    )
    reason = models.CharField(max_length=500, blank=True)
    # For the per-address limit; never shown.
    caller_address = models.CharField(max_length=45, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.caller_name} for {self.consultant}"


# Modules of their own: recordings and their consent receipts
# (docs/recording.md); a call's measured quality and feedback (docs/operations.md).
from .quality_models import CallFeedback, CallQuality  # noqa: E402
from .recording_models import Recording, RecordingChunk, RecordingConsent  # noqa: E402

__all__ = [
    "CallFeedback",
    "CallQuality",
    "Callback",
    "Consultant",
    "Consultation",
    "DeskSocket",
    "EmbedSite",
    "Presence",
    "Recording",
    "RecordingChunk",
    "RecordingConsent",
    "ServerProcess",
    "Ticket",
]
