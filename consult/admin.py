"""The support lead's view: consultants with live state, the queue, and the history."""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext_lazy

from . import embed, errors, services
from .events import publish_on_commit
from .export import export_view
from .models import Callback, Consultant, Consultation, EmbedSite, Ticket
from .ops_admin import CallFeedbackInline, CallQualityInline
from .recording_admin import RecordingsOnConsultation
from .selectors import consultant_status, consultants_with_live_state
from .services import privacy

# A consultant's status as the pages word it (templates/consult/_status.html).
STATUS_WORDS = {
    "online": pgettext_lazy("presence", "online"),
    "busy": _("in a call"),
    "away": pgettext_lazy("presence", "away"),
    "offline": pgettext_lazy("presence", "offline"),
}


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

    def get_readonly_fields(self, request, obj=None):
        # Whose desk this is, and the slug callers and embedded sites reach it
        # by, are set at creation: moving the profile to another user, or
        # freeing its slug for another profile, would hand someone else the
        # consultant's callers. Superusers only.
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and not request.user.is_superuser:
            fields = [*fields, "user", "slug"]
        return fields

    def get_prepopulated_fields(self, request, obj=None):
        if obj is not None and not request.user.is_superuser:
            return {}  # the slug is read-only then
        return super().get_prepopulated_fields(request, obj)

    def get_queryset(self, request):
        return consultants_with_live_state(super().get_queryset(request))

    @admin.display(description=_("status"))
    def live_status(self, obj):
        status = consultant_status(presence=obj.presence, in_call=obj.in_call)
        return STATUS_WORDS.get(status, status)

    @admin.display(description=_("waiting"), ordering="queue_length")
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
        modeladmin.message_user(
            request,
            ngettext("Done for %(count)d row.", "Done for %(count)d rows.", done)
            % {"count": done},
            messages.SUCCESS,
        )
    elif not tried:
        modeladmin.message_user(
            request,
            _("Nothing to do: none of the selected rows is live any more."),
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


end_calls.short_description = _("End call (both parties are told)")
end_calls.allowed_permissions = ("change",)


def remove_from_queue(modeladmin, request, queryset):
    waiting = queryset.filter(state=Ticket.State.WAITING)
    _act(modeladmin, request, waiting, services.ticket_remove, ticket_id=lambda t: t.pk)


remove_from_queue.short_description = _("Remove from queue (the caller is told)")
remove_from_queue.allowed_permissions = ("change",)


def erase_personal_data(modeladmin, request, queryset):
    erased = privacy.consultations_erase(
        consultation_ids=list(queryset.values_list("pk", flat=True))
    )
    skipped = queryset.count() - erased
    modeladmin.message_user(
        request,
        ngettext(
            "Erased the caller's personal data of %(count)d consultation.",
            "Erased the caller's personal data of %(count)d consultations.",
            erased,
        )
        % {"count": erased},
        messages.SUCCESS,
    )
    if skipped:
        modeladmin.message_user(
            request,
            ngettext(
                "%(count)d still active was left alone: end it first.",
                "%(count)d still active were left alone: end them first.",
                skipped,
            )
            % {"count": skipped},
            messages.WARNING,
        )


erase_personal_data.short_description = _("Erase caller's personal data")
erase_personal_data.allowed_permissions = ("delete",)


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
    exclude = [
        "offer",
        "candidates",
        "token_hash",
        "caller_channel",
        "caller_process",
        "move_hash",
        "notify_email",
    ]
    ordering = ["created_at"]

    def get_exclude(self, request, obj=None):
        # Addresses are for the limits and the events log; shown only to staff
        # given the permission made for it.
        exclude = list(super().get_exclude(request, obj))
        if not request.user.has_perm("consult.view_caller_address"):
            exclude.append("caller_address")
        return exclude

    def get_queryset(self, request):
        live = [Ticket.State.WAITING, Ticket.State.IN_CALL]
        return (
            super()
            .get_queryset(request)
            .filter(state__in=live)
            .select_related("consultant")
        )

    @admin.display(description=_("waiting since"), ordering="created_at")
    def waiting_since(self, obj):
        return obj.created_at

    @admin.display(boolean=True, description=_("reconnecting"))
    def reconnecting(self, obj):
        return obj.dropped_at is not None

    def has_change_permission(self, request, obj=None):
        # Needed to act on the queue; the form itself shows nothing editable.
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        # Removing a live ticket behind the services' back would strand its
        # caller: "Remove from queue" goes through them.
        return False


def callbacks_handled(modeladmin, request, queryset):
    _act(
        modeladmin,
        request,
        queryset.select_related("consultant"),
        services.callback_done,
        consultant_id=lambda callback: callback.consultant_id,
        callback_id=lambda callback: callback.pk,
    )


callbacks_handled.short_description = _("Handled: remove (the desk is updated)")
callbacks_handled.allowed_permissions = ("delete",)


@admin.register(Callback)
class CallbackAdmin(ReadOnlyAdmin):
    """Callers waiting to be called back, oldest first; handled ones are removed."""

    actions = [callbacks_handled]
    list_display = ["caller_name", "contact", "consultant", "created_at"]
    list_filter = ["consultant"]
    search_fields = ["caller_name", "contact"]
    exclude = ["caller_address"]

    def get_actions(self, request):
        # Deleting behind the services' back would leave the desks' lists stale.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Consultation)
class ConsultationAdmin(RecordingsOnConsultation, ReadOnlyAdmin):
    actions = [end_calls, erase_personal_data, "delete_selected"]
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
    # Connectivity and the watchdog's rungs (docs/connectivity.md) count rescues.
    list_filter = [
        "consultant",
        "outcome",
        "ended_by",
        "audio_only",
        "connectivity",
        "rescued_by",
        "requested_at",
    ]
    search_fields = ["caller_name", "reason"]
    date_hierarchy = "requested_at"
    exclude = ["ticket", "consultant_channel", "consultant_process"]
    list_select_related = ["consultant"]
    # The call's measured quality and the caller's rating (docs/operations.md).
    inlines = [CallQualityInline, CallFeedbackInline]
    # Adds the CSV export link (consult/export.py) to the list's tools.
    change_list_template = "admin/consult/consultation/change_list.html"

    def get_urls(self):
        export = path(
            "export.csv",
            self.admin_site.admin_view(partial(export_view, self)),
            name="consult_consultation_export",
        )
        return [export, *super().get_urls()]

    @admin.display(description=_("wait"))
    def wait(self, obj):
        return _duration(obj.wait_seconds)

    @admin.display(description=_("talk"))
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

    def delete_model(self, request, obj):
        privacy.consultations_delete(consultation_ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        active = queryset.filter(outcome=Consultation.Outcome.ACTIVE)
        if active.exists():
            self.message_user(
                request,
                _("Active consultations were not deleted: end them first."),
                messages.WARNING,
            )
        # With their tickets: nothing of the caller stays behind.
        privacy.consultations_delete(
            consultation_ids=list(queryset.values_list("pk", flat=True))
        )


# --- Users and groups: only superusers grant identity or permissions ---------
# Django's own admins let anyone who may change users (or groups) make
# themselves superuser, give themselves any permission, or set another
# user's password and log in as them. Staff who are not superusers keep
# the rest: names, e-mail, active or not.
GRANTING_USER_FIELDS = ["is_superuser", "is_staff", "groups", "user_permissions"]
# The fields that prove who an account is: whoever sets another user's
# e-mail can reset that user's password through it, and so log in as them.
IDENTITY_USER_FIELDS = ["username", "email"]

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class GuardedUserAdmin(UserAdmin):
    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += GRANTING_USER_FIELDS
            if obj is not None and obj.pk != request.user.pk:
                fields += IDENTITY_USER_FIELDS
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser and str(request.user.pk) != str(id):
            raise PermissionDenied(_("Only superusers set other users' passwords."))
        return super().user_change_password(request, id, form_url)


@admin.register(Group)
class GuardedGroupAdmin(GroupAdmin):
    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("permissions")
        return fields


# --- Embedded sites: the allow-list of the consulting bot (docs/embed.md) ----------


class EmbedSiteForm(forms.ModelForm):
    class Meta:
        model = EmbedSite
        fields = ["origin", "label", "consultants", "is_active"]
        # Check boxes, not the admin's two-list filter widget, whose icons
        # carry ARIA a screen reader may not read (WCAG 4.1.2).
        widgets = {"consultants": forms.CheckboxSelectMultiple}

    def clean_origin(self):
        # One spelling, the browser's: `frame-ancestors` and the host check
        # compare strings.
        return embed.normalize_origin(self.cleaned_data["origin"])


@admin.register(EmbedSite)
class EmbedSiteAdmin(admin.ModelAdmin):
    form = EmbedSiteForm
    change_form_template = "embed/admin_change_form.html"
    list_display = ["label", "origin", "may_offer", "is_active", "created_at"]
    list_filter = ["is_active", "consultants"]
    search_fields = ["label", "origin"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("consultants")

    @admin.display(description=_("may offer"))
    def may_offer(self, obj):
        return ", ".join(c.name for c in obj.consultants.all()) or "every consultant"

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:
            only = list(obj.consultants.all()[:2])
            context["embed_snippet"] = embed.snippet(
                request.build_absolute_uri("/"), only[0].slug if len(only) == 1 else ""
            )
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)
