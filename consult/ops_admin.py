"""A consultation's measured quality and feedback, shown read-only on its admin
page (consult/admin.py); written only by their services."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import CallFeedback, CallQuality


class ReadOnlyInline(admin.StackedInline):
    can_delete = False
    extra = 0
    max_num = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CallQualityInline(ReadOnlyInline):
    model = CallQuality
    fields = [
        "accept_to_media_ms",
        "relayed",
        ("caller_candidate", "caller_protocol"),
        ("consultant_candidate", "consultant_protocol"),
        "samples",
        ("rtt_median", "rtt_worst_ms", "jitter_worst_ms"),
        ("loss_mean", "loss_worst_pct"),
        ("in_kbps", "out_kbps"),
        "freezes",
    ]
    readonly_fields = ["rtt_median", "loss_mean", "in_kbps", "out_kbps"]

    @admin.display(description=_("median RTT (ms)"))
    def rtt_median(self, obj):
        return obj.rtt_median_ms

    @admin.display(description=_("mean loss (%)"))
    def loss_mean(self, obj):
        return None if obj.loss_mean_pct is None else round(obj.loss_mean_pct, 2)

    @admin.display(description=_("mean bitrate in (kbit/s)"))
    def in_kbps(self, obj):
        return None if obj.in_kbps_mean is None else round(obj.in_kbps_mean)

    @admin.display(description=_("mean bitrate out (kbit/s)"))
    def out_kbps(self, obj):
        return None if obj.out_kbps_mean is None else round(obj.out_kbps_mean)


class CallFeedbackInline(ReadOnlyInline):
    model = CallFeedback
    fields = ["rating", "comment", "rated_at", "flag", "flagged_at"]
