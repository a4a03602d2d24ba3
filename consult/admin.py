"""The support lead's view: consultants with live state, the queue, and the history."""

from django.contrib import admin

from .models import Consultant, Consultation, Ticket
from .selectors import consultant_status, consultants_with_live_state


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


@admin.register(Consultant)
class ConsultantAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "title",
        "live_status",
        "queue_length",
        "max_queue",
        "is_active",
    ]
    list_filter = ["is_active", "presence"]
    search_fields = ["name", "slug", "user__username"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["presence", "desk_dropped_at"]
    autocomplete_fields = ["user"]

    def get_queryset(self, request):
        return consultants_with_live_state(super().get_queryset(request))

    @admin.display(description="status")
    def live_status(self, obj):
        return consultant_status(presence=obj.presence, in_call=obj.in_call)

    @admin.display(description="waiting", ordering="queue_length")
    def queue_length(self, obj):
        return obj.queue_length


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the service only: admins look, they do not edit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class QueueAdmin(ReadOnlyAdmin):
    """The live queue: callers waiting or in a call right now."""

    list_display = [
        "caller_name",
        "consultant",
        "state",
        "waiting_since",
        "reconnecting",
        "audio_only",
    ]
    list_filter = ["consultant", "state", "audio_only"]
    search_fields = ["caller_name", "reason"]
    exclude = ["offer", "candidates", "token_hash", "caller_channel", "caller_process"]
    ordering = ["created_at"]

    def get_queryset(self, request):
        live = [Ticket.State.WAITING, Ticket.State.IN_CALL]
        return (
            super()
            .get_queryset(request)
            .filter(state__in=live)
            .select_related("consultant")
        )

    @admin.display(description="waiting since", ordering="created_at")
    def waiting_since(self, obj):
        return obj.created_at

    @admin.display(boolean=True)
    def reconnecting(self, obj):
        return obj.dropped_at is not None

    def has_delete_permission(self, request, obj=None):
        # Removing a live ticket behind the service's back would strand its caller.
        return False


@admin.register(Consultation)
class ConsultationAdmin(ReadOnlyAdmin):
    list_display = [
        "requested_at",
        "caller_name",
        "consultant",
        "outcome",
        "wait",
        "talk",
        "ended_by",
        "audio_only",
    ]
    list_filter = ["consultant", "outcome", "ended_by", "audio_only", "requested_at"]
    search_fields = ["caller_name", "reason"]
    date_hierarchy = "requested_at"
    exclude = ["ticket", "consultant_channel", "consultant_process"]
    list_select_related = ["consultant"]

    @admin.display(description="wait")
    def wait(self, obj):
        return _duration(obj.wait_seconds)

    @admin.display(description="talk")
    def talk(self, obj):
        return _duration(obj.talk_seconds)
