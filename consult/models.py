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
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


class ConsultantQuerySet(models.QuerySet):
    def serving(self) -> "ConsultantQuerySet":
        """Consultants callers may see and reach: the profile and its user active."""
        return self.filter(is_active=True, user__is_active=True)


class Consultant(models.Model):
    """Someone who takes calls from a queue of their own."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="consultant",
        verbose_name=_("user"),
    )
    slug = models.SlugField(unique=True, verbose_name=_("slug"))
    name = models.CharField(max_length=80, verbose_name=_("name"))
    title = models.CharField(max_length=120, blank=True, verbose_name=_("title"))
    max_queue = models.PositiveIntegerField(
        verbose_name=_("max queue"),
        default=20,
        help_text=_("Callers who may wait at once; more are told queue_full."),
    )
    is_active = models.BooleanField(
        verbose_name=_("is active"),
        default=True,
        help_text=_("Inactive consultants are hidden from callers."),
    )
    presence = models.CharField(
        verbose_name=_("presence"),
        max_length=8,
        choices=Presence.choices,
        default=Presence.OFFLINE,
    )
    # When the last desk socket closed; the consultant goes offline once this
    # is older than the grace period and no desk came back.
    desk_dropped_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("desk dropped at")
    )
    # Word from the consultant to everyone waiting in their queue, shown on
    # their pages until replaced or cleared (docs/protocol.md, queue_message).
    queue_message = models.CharField(
        max_length=280, blank=True, verbose_name=_("queue message")
    )

    objects = ConsultantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("consultant")
        verbose_name_plural = _("consultants")

    def __str__(self):
        return self.name


class EmbedSite(models.Model):
    """A website allowed to embed the consulting bot (docs/embed.md).

    The allow-list: only active sites' origins may frame `/embed/…`, and
    `embed.js` on any other page shows nothing.
    """

    origin = models.CharField(
        verbose_name=_("origin"),
        max_length=200,
        unique=True,
        help_text=_(
            "Scheme, host and port exactly as the browser sends them, "
            "e.g. https://shop.example.com (no path, no trailing slash)."
        ),
    )
    label = models.CharField(max_length=120, verbose_name=_("label"))
    consultants = models.ManyToManyField(
        Consultant,
        blank=True,
        related_name="embed_sites",
        help_text=_("Whom the site may offer; none means every consultant."),
        verbose_name=_("consultants"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        ordering = ["label"]
        verbose_name = _("embedded site")
        verbose_name_plural = _("embedded sites")

    def __str__(self):
        return f"{self.label} ({self.origin})"


class ServerProcess(models.Model):
    """A live server process; its sockets die with it when its heartbeat stops."""

    id = models.CharField(primary_key=True, max_length=32)
    started_at = models.DateTimeField(auto_now_add=True, verbose_name=_("started at"))
    heartbeat_at = models.DateTimeField(verbose_name=_("heartbeat at"))
    # Shut down cleanly at this time: it closed its sockets itself, so their
    # clients reconnected at once (see services.liveness).
    stopped_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("stopped at")
    )
    # Taken for dead and swept then. The row stays a while as a tombstone, so
    # that what the process still binds before it learns of it (its next
    # heartbeat) is swept too, should it then die.
    swept_at = models.DateTimeField(null=True, blank=True, verbose_name=_("swept at"))
    # Its own channel, a member of the hub group: the repair pass takes it
    # out of the group when it takes the process for dead.
    channel = models.CharField(max_length=200, blank=True, verbose_name=_("channel"))

    def __str__(self):
        return self.id


class DeskSocket(models.Model):
    """One open desk (browser tab) of a consultant, for presence across processes."""

    consultant = models.ForeignKey(
        Consultant,
        on_delete=models.CASCADE,
        related_name="desk_sockets",
        verbose_name=_("consultant"),
    )
    channel_name = models.CharField(
        max_length=200, unique=True, verbose_name=_("channel name")
    )
    process = models.CharField(max_length=32, db_index=True, verbose_name=_("process"))
    opened_at = models.DateTimeField(auto_now_add=True, verbose_name=_("opened at"))

    def __str__(self):
        return self.channel_name


class Ticket(models.Model):
    """A caller's place in one consultant's queue, and the caller's side of a call."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting")
        IN_CALL = "in_call", _("In call")
        ENDED = "ended", _("Ended")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consultant = models.ForeignKey(
        Consultant,
        on_delete=models.CASCADE,
        related_name="tickets",
        verbose_name=_("consultant"),
    )
    caller_name = models.CharField(max_length=80, verbose_name=_("caller name"))
    reason = models.CharField(max_length=500, blank=True, verbose_name=_("reason"))
    audio_only = models.BooleanField(default=False, verbose_name=_("audio only"))
    connectivity = models.CharField(
        max_length=8,
        choices=Connectivity.choices,
        blank=True,
        default="",
        verbose_name=_("connectivity"),
    )
    # Signaling held for the consultant while the caller waits; erased when
    # the ticket leaves the queue.
    offer = models.TextField(blank=True, verbose_name=_("offer"))
    candidates = models.JSONField(
        default=list, blank=True, verbose_name=_("candidates")
    )
    token_hash = models.CharField(
        max_length=64, unique=True, verbose_name=_("token hash")
    )
    state = models.CharField(
        verbose_name=_("state"),
        max_length=8,
        choices=State.choices,
        default=State.WAITING,
        db_index=True,
    )
    # The caller's socket: empty while it is away within its grace period.
    caller_channel = models.CharField(
        max_length=200, blank=True, db_index=True, verbose_name=_("caller channel")
    )
    caller_process = models.CharField(
        max_length=32, blank=True, db_index=True, verbose_name=_("caller process")
    )
    # Where the caller joined from, for the cap on tickets waiting per address;
    # erased with the offer and candidates when the ticket ends.
    caller_address = models.CharField(
        max_length=45, blank=True, verbose_name=_("caller address")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    dropped_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("dropped at")
    )
    # When a long waiter was asked whether they are still there; cleared by
    # their answer (docs/protocol.md: the liveness check).
    still_there_asked_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("still there asked at")
    )
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))
    # A refused caller (or one whose consultant went offline) may carry this
    # ticket's join time to another queue once: the hash of the `move_token`
    # sent with `refused`, cleared when used (services.moves).
    move_hash = models.CharField(
        max_length=64, blank=True, db_index=True, verbose_name=_("move hash")
    )
    # The consultant this caller moved or was transferred from, and their note.
    came_from = models.ForeignKey(
        Consultant,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("came from"),
    )
    transfer_note = models.CharField(
        max_length=280, blank=True, verbose_name=_("transfer note")
    )
    # "Tell me by e-mail when I am number `notify_place`": erased when the
    # ticket ends; `notified_at` makes sure it is sent once (services.notify).
    notify_email = models.EmailField(blank=True, verbose_name=_("notify email"))
    notify_place = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("notify place")
    )
    # The caller's page language (a code of settings.LANGUAGES), from their
    # socket: the turn-near e-mail and the recording consent text use it.
    language = models.CharField(max_length=12, blank=True, verbose_name=_("language"))
    notified_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("notified at")
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets (the live queue)")
        # Addresses are kept for the limits and the events log; only staff
        # given this permission see them in the admin.
        permissions = [("view_caller_address", _("Can see callers' network addresses"))]
        indexes = [
            models.Index(fields=["consultant", "state", "created_at"]),
            models.Index(fields=["caller_address", "state"]),
        ]

    def __str__(self):
        return f"{self.caller_name} for {self.consultant}"


class Consultation(models.Model):
    """The history of one caller's request: the call, or why there was none."""

    class Outcome(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        REFUSED = "refused", _("Refused")
        CANCELLED = "cancelled", _("Cancelled")
        ABANDONED = "abandoned", _("Abandoned")
        DISCONNECTED = "disconnected", _("Disconnected")
        # Accepted, but media never flowed between the two browsers.
        FAILED = "failed", _("Failed to connect")

    class Party(models.TextChoices):
        CALLER = "caller", _("Caller")
        CONSULTANT = "consultant", _("Consultant")
        SYSTEM = "system", _("System")
        OPERATOR = "operator", _("Operator")

    consultant = models.ForeignKey(
        Consultant,
        on_delete=models.PROTECT,
        related_name="consultations",
        verbose_name=_("consultant"),
    )
    ticket = models.OneToOneField(
        Ticket,
        on_delete=models.SET_NULL,
        null=True,
        related_name="consultation",
        verbose_name=_("ticket"),
    )
    caller_name = models.CharField(max_length=80, verbose_name=_("caller name"))
    reason = models.CharField(max_length=500, blank=True, verbose_name=_("reason"))
    audio_only = models.BooleanField(default=False, verbose_name=_("audio only"))
    requested_at = models.DateTimeField(verbose_name=_("requested at"))
    accepted_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("accepted at")
    )
    connectivity = models.CharField(
        max_length=8,
        choices=Connectivity.choices,
        blank=True,
        default="",
        verbose_name=_("connectivity"),
    )
    connected_at = models.DateTimeField(
        verbose_name=_("connected at"),
        null=True,
        blank=True,
        help_text=_("When the consultant's answer reached the caller."),
    )
    media_connected_at = models.DateTimeField(
        verbose_name=_("media connected at"),
        null=True,
        blank=True,
        help_text=_("When a browser of the call first reported media connected."),
    )
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))
    ended_by = models.CharField(
        max_length=10, choices=Party.choices, blank=True, verbose_name=_("ended by")
    )
    end_reason = models.CharField(
        max_length=500, blank=True, verbose_name=_("end reason")
    )
    # The furthest rung of the watchdog's ladder the call needed, and the one
    # after which media flowed again (empty: never needed, never rescued).
    watchdog_step = models.CharField(
        max_length=12,
        choices=WatchdogStep.choices,
        blank=True,
        default="",
        verbose_name=_("watchdog step"),
    )
    rescued_by = models.CharField(
        max_length=12,
        choices=WatchdogStep.choices,
        blank=True,
        default="",
        verbose_name=_("rescued by"),
    )
    outcome = models.CharField(
        verbose_name=_("outcome"),
        max_length=12,
        choices=Outcome.choices,
        default=Outcome.ACTIVE,
        db_index=True,
    )
    # The desk socket that holds the call: empty while it is away.
    consultant_channel = models.CharField(
        max_length=200, blank=True, db_index=True, verbose_name=_("consultant channel")
    )
    consultant_process = models.CharField(
        max_length=32, blank=True, db_index=True, verbose_name=_("consultant process")
    )
    consultant_dropped_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("consultant dropped at")
    )
    # When the caller's name and reason were erased (`services.privacy`): after
    # CONSULT_HISTORY_RETENTION_DAYS, or on an admin's request.
    anonymised_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("anonymised at")
    )

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("consultation")
        verbose_name_plural = _("consultations")
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
        permissions = [("operate_board", _("Can act from the operations board"))]

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
        Consultant,
        on_delete=models.CASCADE,
        related_name="callbacks",
        verbose_name=_("consultant"),
    )
    caller_name = models.CharField(max_length=80, verbose_name=_("caller name"))
    contact = models.CharField(
        verbose_name=_("contact"),
        max_length=120,
        help_text=_("A phone number or an e-mail address."),
    )
    reason = models.CharField(max_length=500, blank=True, verbose_name=_("reason"))
    # For the per-address limit; never shown.
    caller_address = models.CharField(
        max_length=45, blank=True, verbose_name=_("caller address")
    )
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("callback request")
        verbose_name_plural = _("callback requests")

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
