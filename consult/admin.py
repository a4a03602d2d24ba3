"""The support lead's view: consultants with live state, the queue, and the history."""

from django.contrib import admin, messages

from . import errors, services
from .events import publish_on_commit
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


def _act(modeladmin, request, rows, service, **kwargs_of) -> None:
    """Run an operator service per row, publish what it tells, report the count.

    Each row is its own transaction: one that moved on meanwhile (the call
    ended, the caller was served) is reported, the others still go through.
    """
    done = tried = 0
    for row in rows:
        tried += 1
        try:
            result = service(**{key: get(row) for key, get in kwargs_of.items()})
        except errors.ConsultError as error:
            modeladmin.message_user(
                request, f"{row}: {error.message}", messages.WARNING
            )
            continue
        publish_on_commit(result.events)
        done += 1
    if done:
        modeladmin.message_user(request, f"Done for {done}.", messages.SUCCESS)
    elif not tried:
        modeladmin.message_user(
            request,
            "Nothing to do: none of the selected rows is live any more.",
            messages.WARNING,
        )


def end_calls(modeladmin, request, queryset):
    active = Consultation.objects.filter(outcome=Consultation.Outcome.ACTIVE)
    if queryset.model is Consultation:
        calls = active.filter(pk__in=queryset)
    else:
        calls = active.filter(ticket__in=queryset)
    _act(
        modeladmin,
        request,
        calls,
        services.consultation_end_by_operator,
        consultation_id=lambda call: call.pk,
    )


end_calls.short_description = "End call (both parties are told)"
end_calls.allowed_permissions = ("change",)


def remove_from_queue(modeladmin, request, queryset):
    waiting = queryset.filter(state=Ticket.State.WAITING)
    _act(modeladmin, request, waiting, services.ticket_remove, ticket_id=lambda t: t.pk)


remove_from_queue.short_description = "Remove from queue (the caller is told)"
remove_from_queue.allowed_permissions = ("change",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the services only: admins look, and act through services."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Ticket)
class QueueAdmin(ReadOnlyAdmin):
    """The live queue: callers waiting or in a call right now."""

    actions = [remove_from_queue, end_calls]

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

    def has_change_permission(self, request, obj=None):
        # Needed to act on the queue; the form itself shows nothing editable.
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        # Removing a live ticket behind the services' back would strand its
        # caller: "Remove from queue" goes through them.
        return False


@admin.register(Consultation)
class ConsultationAdmin(ReadOnlyAdmin):
    actions = [end_calls, "delete_selected"]
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

    def has_change_permission(self, request, obj=None):
        # The list's actions need it; no row is edited by hand.
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        """History may be deleted once ended; an active call is ended first."""
        if obj is not None and obj.outcome == Consultation.Outcome.ACTIVE:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        active = queryset.filter(outcome=Consultation.Outcome.ACTIVE)
        if active.exists():
            self.message_user(
                request,
                "Active consultations were not deleted: end them first.",
                messages.WARNING,
            )
        queryset.exclude(outcome=Consultation.Outcome.ACTIVE).delete()
