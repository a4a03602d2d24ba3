"""Domain errors, each with the stable code that the protocol sends in `error`.

The `message` is for people: translated lazily, it is worded in the language
of whoever reads it (the socket's, see `signaling.consumers.base`)."""

from django.utils.translation import gettext_lazy as _


class ConsultError(Exception):
    code = "error"
    message = _("The request could not be carried out.")

    def __init__(self, message: str | None = None, **details):
        self.message = message or self.message
        # Fields the `error` frame carries beside its code and message.
        self.details = details
        super().__init__(self.message)


class UnknownConsultant(ConsultError):
    code = "unknown_consultant"
    message = _("No such consultant.")


class ConsultantUnavailable(ConsultError):
    code = "consultant_unavailable"
    message = _("The consultant is offline.")


class AlreadyQueued(ConsultError):
    code = "already_queued"
    message = _("This connection already holds a ticket.")


class QueueFull(ConsultError):
    code = "queue_full"
    message = _("The consultant's queue is full; please try again later.")


class TooManyFromAddress(ConsultError):
    code = "too_many_from_address"
    message = _(
        "Too many callers are waiting from your network; please try again when "
        "one of them has been served."
    )


class TooManyJoins(ConsultError):
    """Carries `retry_after` (seconds)."""

    code = "too_many_joins"
    message = _("Too many joins in a short time; please wait a moment and try again.")


class TryLater(ConsultError):
    """The server is saturated (`signaling.admission`); carries `retry_after`
    (seconds)."""

    code = "try_later"
    message = _("The service is very busy right now; please try again in a moment.")


class ChallengeRequired(ConsultError):
    """The queue is under pressure: carries the `challenge` (ALTCHA) to solve."""

    code = "challenge_required"
    message = _(
        "This queue is busy: your browser must solve a short puzzle before joining."
    )


class ChallengeFailed(ChallengeRequired):
    """The solution sent was wrong, expired or used before: carries a new one."""

    code = "challenge_failed"
    message = _("The puzzle's solution was not accepted; please solve the new one.")


class BadToken(ConsultError):
    code = "bad_token"
    message = _("Unknown, ended or expired token.")


class NotQueued(ConsultError):
    code = "not_queued"
    message = _("This connection holds no ticket.")


class NotInCall(ConsultError):
    code = "not_in_call"
    message = _("This connection is not in a call.")


class QueueEmpty(ConsultError):
    code = "queue_empty"
    message = _("Nobody is waiting.")


class TicketGone(ConsultError):
    code = "ticket_gone"
    message = _("That ticket is no longer waiting in your queue.")


class Busy(ConsultError):
    code = "busy"
    message = _("Finish the current consultation first.")


class CannotMove(ConsultError):
    code = "cannot_move"
    message = _(
        "Your place cannot be carried over: it was not refused, was carried over "
        "already, is too old, or would go back to the same queue."
    )


class BadTransfer(ConsultError):
    code = "bad_transfer"
    message = _("That colleague cannot take callers now (unknown, offline, or full).")


class CallbackGone(ConsultError):
    code = "callback_gone"
    message = _("That callback is no longer open.")


class AlreadyNotified(ConsultError):
    code = "already_notified"
    message = _("The e-mail for this place in line was sent already.")


class FeedbackRefused(ConsultError):
    code = "feedback_refused"
    message = _("Feedback on that call is not possible.")
