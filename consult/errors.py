"""Domain errors, each with the stable code that the protocol sends in `error`."""


class ConsultError(Exception):
    code = "error"
    message = "The request could not be carried out."

    def __init__(self, message: str | None = None):
        self.message = message or self.message
        super().__init__(self.message)


class UnknownConsultant(ConsultError):
    code = "unknown_consultant"
    message = "No such consultant."


class ConsultantUnavailable(ConsultError):
    code = "consultant_unavailable"
    message = "The consultant is offline."


class AlreadyQueued(ConsultError):
    code = "already_queued"
    message = "This connection already holds a ticket."


class QueueFull(ConsultError):
    code = "queue_full"
    message = "The consultant's queue is full; please try again later."


class TooManyFromAddress(ConsultError):
    code = "too_many_from_address"
    message = (
        "Too many callers are waiting from your network; please try again when "
        "one of them has been served."
    )


class BadToken(ConsultError):
    code = "bad_token"
    message = "Unknown, ended or expired token."


class NotQueued(ConsultError):
    code = "not_queued"
    message = "This connection holds no ticket."


class NotInCall(ConsultError):
    code = "not_in_call"
    message = "This connection is not in a call."


class QueueEmpty(ConsultError):
    code = "queue_empty"
    message = "Nobody is waiting."


class TicketGone(ConsultError):
    code = "ticket_gone"
    message = "That ticket is no longer waiting in your queue."


class Busy(ConsultError):
    code = "busy"
    message = "Finish the current consultation first."
