"""Per-consultation call quality and feedback: aggregates, never raw samples.

Written only by `consult.services.quality` and `consult.services.feedback`;
docs/operations.md says how each figure is computed.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


def histogram_median(histogram: dict[str, int]) -> int | None:
    """The lower bound of the bucket that holds the middle sample of a
    {bucket lower bound: count} histogram; None when it is empty."""
    total = sum(histogram.values())
    seen = 0
    for bucket in sorted(histogram, key=int):
        seen += histogram[bucket]
        if seen * 2 >= total:
            return int(bucket)
    return None


class CallQuality(models.Model):
    """What both browsers of one call measured, folded into running aggregates."""

    consultation = models.OneToOneField(
        "consult.Consultation",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="quality",
        verbose_name=_("consultation"),
    )
    # From the accept to the first report of media flowing (server clocks).
    accept_to_media_ms = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("accept to media (ms)")
    )
    # The selected candidate pair's local candidate type and protocol, as each
    # side last reported it: host, srflx, prflx or relay; udp, tcp or tls.
    caller_candidate = models.CharField(
        max_length=5, blank=True, verbose_name=_("caller candidate")
    )
    caller_protocol = models.CharField(
        max_length=3, blank=True, verbose_name=_("caller protocol")
    )
    consultant_candidate = models.CharField(
        max_length=5, blank=True, verbose_name=_("consultant candidate")
    )
    consultant_protocol = models.CharField(
        max_length=3, blank=True, verbose_name=_("consultant protocol")
    )
    relayed = models.BooleanField(default=False, verbose_name=_("relayed"))
    samples = models.PositiveIntegerField(default=0, verbose_name=_("samples"))
    # Round-trip times in buckets (`services.quality.rtt_bucket`): the median
    # of a long call without keeping every sample.
    rtt_histogram = models.JSONField(
        default=dict, blank=True, verbose_name=_("RTT histogram")
    )
    rtt_worst_ms = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("RTT worst (ms)")
    )
    loss_sum_pct = models.FloatField(default=0, verbose_name=_("loss sum (%)"))
    loss_samples = models.PositiveIntegerField(
        default=0, verbose_name=_("loss samples")
    )
    loss_worst_pct = models.FloatField(
        null=True, blank=True, verbose_name=_("loss worst (%)")
    )
    jitter_worst_ms = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("jitter worst (ms)")
    )
    in_kbps_sum = models.FloatField(default=0, verbose_name=_("in kbps sum"))
    out_kbps_sum = models.FloatField(default=0, verbose_name=_("out kbps sum"))
    kbps_samples = models.PositiveIntegerField(
        default=0, verbose_name=_("kbps samples")
    )
    # A freeze: video that was playing stops (under one decoded frame a
    # second); each side's current state tells the next sample a new freeze.
    freezes = models.PositiveIntegerField(default=0, verbose_name=_("freezes"))
    caller_frozen = models.BooleanField(default=False, verbose_name=_("caller frozen"))
    consultant_frozen = models.BooleanField(
        default=False, verbose_name=_("consultant frozen")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("call quality")
        verbose_name_plural = _("call quality")

    def __str__(self):
        return f"quality of {self.consultation_id}"

    @property
    def rtt_median_ms(self) -> int | None:
        """The median round-trip time, to its bucket's lower bound (ms)."""
        return histogram_median(self.rtt_histogram)

    @property
    def loss_mean_pct(self) -> float | None:
        return self.loss_sum_pct / self.loss_samples if self.loss_samples else None

    @property
    def in_kbps_mean(self) -> float | None:
        return self.in_kbps_sum / self.kbps_samples if self.kbps_samples else None

    @property
    def out_kbps_mean(self) -> float | None:
        return self.out_kbps_sum / self.kbps_samples if self.kbps_samples else None


class CallFeedback(models.Model):
    """The caller's rating of one consultation, and the consultant's flag on it."""

    class Flag(models.TextChoices):
        AUDIO = "audio", _("audio bad")
        VIDEO = "video", _("video bad")
        DROPPED = "dropped", _("dropped")
        OTHER = "other", _("other")

    consultation = models.OneToOneField(
        "consult.Consultation",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="feedback",
        verbose_name=_("consultation"),
    )
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, verbose_name=_("rating")
    )
    comment = models.CharField(max_length=500, blank=True, verbose_name=_("comment"))
    rated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("rated at"))
    flag = models.CharField(
        max_length=8, choices=Flag.choices, blank=True, verbose_name=_("flag")
    )
    flagged_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("flagged at")
    )

    class Meta:
        verbose_name = _("call feedback")
        verbose_name_plural = _("call feedback")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True)
                | models.Q(rating__gte=1, rating__lte=5),
                name="rating_one_to_five",
            )
        ]

    def __str__(self):
        return f"feedback on {self.consultation_id}"
