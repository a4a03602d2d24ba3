"""The operations board of the admin: a live view of the floor (a one-second
JSON poll) and the operators' actions, which go through the same services as
the sockets, are confirmed on the page, need `consult.operate_board`, and are
written to the admin's history with who did them (docs/operations.md)."""

import json

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import errors, services
from .board import board_state
from .events import publish_on_commit
from .models import Consultant, Consultation, Ticket

# The desk's close code when staff set its consultant offline: final, so that
# the page does not reconnect and go online again (docs/protocol.md).
CLOSE_SENT_OFFLINE = 4410
OPERATE = "consult.operate_board"
MOVED_NOTE = "Moved here by staff from the operations board."


def _may_view(request) -> None:
    if not request.user.has_perm("consult.view_consultation"):
        raise PermissionDenied


@require_GET
def board(request):
    """The board's page; its lists are filled and kept live by static/js/board.js."""
    _may_view(request)
    context = {
        **admin.site.each_context(request),
        "title": _("Operations board"),
        "can_act": request.user.has_perm(OPERATE),
    }
    return render(request, "admin/consult/board.html", context)


@never_cache
@require_GET
def board_json(request):
    """GET: {consultants: board_state(), can_act}."""
    _may_view(request)
    return JsonResponse(
        {"consultants": board_state(), "can_act": request.user.has_perm(OPERATE)}
    )


def _log(request, obj, message: str) -> None:
    LogEntry.objects.log_actions(
        user_id=request.user.pk,
        queryset=[obj],
        action_flag=CHANGE,
        change_message=message,
        single_object=True,
    )


def _end_call(request, data) -> str:
    call_id = int(data.get("consultation", 0))
    result = services.consultation_end_by_operator(consultation_id=call_id)
    _log(request, Consultation.objects.get(pk=call_id), "Ended from the board.")
    publish_on_commit(result.events)
    return _("The call was ended.")


def _remove(request, data) -> str:
    ticket_id = str(data.get("ticket", ""))
    result = services.ticket_remove(ticket_id=ticket_id)
    call = Consultation.objects.get(ticket_id=ticket_id)
    _log(request, call, "Removed from the queue from the board.")
    publish_on_commit(result.events)
    return _("The caller was removed from the queue.")


def _move(request, data) -> str:
    ticket = Ticket.objects.filter(
        pk=str(data.get("ticket", "")), state=Ticket.State.WAITING
    ).first()
    if ticket is None:
        raise errors.TicketGone(_("That caller is no longer waiting."))
    source = ticket.consultant
    result = services.ticket_transfer(
        consultant_id=source.pk,
        ticket_id=str(ticket.pk),
        to_slug=str(data.get("to", "")),
        note=MOVED_NOTE,
    )
    ticket.refresh_from_db(fields=["consultant"])
    _log(
        request,
        source,
        f"Moved waiting caller {ticket.pk} to {ticket.consultant.slug} from the board.",
    )
    publish_on_commit(result.events)
    return _("The caller was moved; they keep their place by join time.")


def _presence(request, data) -> str:
    consultant = Consultant.objects.get(slug=str(data.get("consultant", "")))
    status = data.get("status")
    if status == "away":
        result = services.consultant_set_presence(
            consultant_id=consultant.pk, presence="away"
        )
    elif status == "offline":
        result = services.consultant_leave(
            consultant_id=consultant.pk, code=CLOSE_SENT_OFFLINE
        )
    else:
        raise ValueError(status)
    _log(request, consultant, f"Set {status} from the board.")
    publish_on_commit(result.events)
    return _("The consultant's status was changed.")


ACTIONS = {
    "end-call": _end_call,
    "remove": _remove,
    "move": _move,
    "presence": _presence,
}


@require_POST
def board_act(request):
    """POST (JSON body {action, ...}, CSRF token in X-CSRFToken): run one
    action; 200 {message}, 400 for a malformed request, 403 without
    `consult.operate_board`, 409 {message} when the row moved on."""
    _may_view(request)
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied
    try:
        data = json.loads(request.body or b"{}")
        action = ACTIONS[data["action"]]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"message": _("Unknown action.")}, status=400)
    try:
        with transaction.atomic():
            message = action(request, data)
    except errors.ConsultError as error:
        return JsonResponse({"message": error.message}, status=409)
    except (
        ValueError,
        TypeError,
        OverflowError,  # an id like 1e400: JSON's infinity
        ValidationError,
        Consultant.DoesNotExist,
    ):
        return JsonResponse({"message": _("Bad request.")}, status=400)
    return JsonResponse({"message": message})
