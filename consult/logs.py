"""Structured logs: one JSON object per line, and the events log (who, what, when).

Events carry identifiers and states only: never SDP, ICE candidates, chat or
a caller's name and reason, so logs can be kept and shipped without holding
what people said or where their devices are.
"""

import json
import logging
from datetime import UTC, datetime

events_log = logging.getLogger("consult.events")

# Fields an event may carry; anything else given to `event()` is dropped.
EVENT_FIELDS = frozenset(
    {
        "role",
        "address",
        "channel",
        "consultant",
        "ticket",
        "consultation",
        "status",
        "code",
        "path",
        "username",
        "reason",
    }
)


def event(what: str, **fields) -> None:
    """Log that `what` happened, with the allowed identifying fields."""
    kept = {k: v for k, v in fields.items() if k in EVENT_FIELDS and v is not None}
    events_log.info(what, extra={"event": what, "fields": kept})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
        }
        if hasattr(record, "event"):
            line["event"] = record.event
            line.update(record.fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)
