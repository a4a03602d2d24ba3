"""Writes to the queue: every change of a ticket, a consultation or a presence.

Each service is a short transaction that takes keyword arguments and returns a
`consult.events.Result` typed by what it answers, plus the events to publish
once the transaction has committed. One module per sub-domain:
- `tickets`: a caller's ticket (join, candidates, cancel, resume, drop, refusal);
- `calls`: a consultation from accept to hang-up (answer, relay, media report);
- `desk`: a consultant's desk sockets and presence;
- `liveness`: process heartbeats and the repair pass (`sweep`);
- `callbacks`: a caller asks to be called back instead of waiting;
- `notify`: "your turn is near" by e-mail, and the link back to the seat;
- `moves`: a caller keeps their join time across queues (move, transfer);
- `operators`: what operators do from the admin (end a call, remove a caller);
- `recordings`: recording a call with both parties' consent, and its file;
- `quality`, `feedback`: a call's measured quality, the caller's rating and
  the consultant's flag (docs/operations.md);
- `connectivity`: the connecting deadline and the watchdog's record;
- `shared`: what they share (states, grace, history rows, frames).
"""

from .callbacks import callback_done, callback_request
from .calls import (
    CallerPayload,
    consultation_answer,
    consultation_end,
    consultation_media_connected,
    consultation_relay,
    consultation_transfer,
    ticket_accept,
)
from .connectivity import consultation_fail, consultation_watchdog
from .desk import (
    consultant_leave,
    consultant_set_presence,
    consultant_set_queue_message,
    desk_closed,
    desk_opened,
)
from .feedback import feedback_flag, feedback_rate
from .liveness import process_heartbeat, process_stopped, sweep
from .moves import ticket_move, ticket_transfer
from .notify import notify_due, notify_send, seat_return, ticket_notify
from .operators import consultation_end_by_operator, ticket_remove
from .quality import quality_record
from .recordings import (
    recording_answer,
    recording_request,
    recording_status,
    recording_stop,
)
from .shared import OFFLINE_REASON, DeskCallPayload, QueuedPayload, token_hash
from .tickets import (
    MAX_CANDIDATES,
    CallerCallPayload,
    Joined,
    Resumption,
    caller_dropped,
    ticket_add_candidate,
    ticket_cancel,
    ticket_create,
    ticket_refuse,
    ticket_resume,
    ticket_still_here,
)

__all__ = [
    "MAX_CANDIDATES",
    "OFFLINE_REASON",
    "CallerCallPayload",
    "CallerPayload",
    "DeskCallPayload",
    "Joined",
    "QueuedPayload",
    "Resumption",
    "callback_done",
    "callback_request",
    "caller_dropped",
    "consultant_leave",
    "consultant_set_presence",
    "consultant_set_queue_message",
    "consultation_answer",
    "consultation_end",
    "consultation_end_by_operator",
    "consultation_fail",
    "consultation_media_connected",
    "consultation_relay",
    "consultation_transfer",
    "consultation_watchdog",
    "desk_closed",
    "desk_opened",
    "feedback_flag",
    "feedback_rate",
    "notify_due",
    "notify_send",
    "process_heartbeat",
    "process_stopped",
    "quality_record",
    "recording_answer",
    "recording_request",
    "recording_status",
    "recording_stop",
    "seat_return",
    "sweep",
    "ticket_accept",
    "ticket_add_candidate",
    "ticket_cancel",
    "ticket_create",
    "ticket_move",
    "ticket_notify",
    "ticket_refuse",
    "ticket_remove",
    "ticket_resume",
    "ticket_still_here",
    "ticket_transfer",
    "token_hash",
]
