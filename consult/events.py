"""What the domain tells the world after a write commits.

Services return these instead of sending anything: the caller of a service
(a consumer, the sweeper) hands them to `signaling.groups.publish` once the
transaction is over, so nobody hears of a row that may still roll back.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tell:
    """Send one frame to one socket, named by the database, never by a client.

    `call` names the consultation a frame belongs to, so that a socket can drop
    the stragglers of a call it has already left; `peer`, when given, is the
    socket of the other party of that call, for the receiver to relay to.
    """

    channel: str
    frame: dict[str, Any]
    call: int | None = None
    peer: str = ""


@dataclass(frozen=True)
class Route:
    """Where a party's frames go in a call: the other party's socket, "" while away.

    The database gives it once; a consumer reuses it for the call's later
    frames until an event says the other party moved (see `signaling.consumers`).
    """

    call: int
    peer: str

    def tell(self, frame: dict[str, Any]) -> list[Tell]:
        return [Tell(self.peer, frame, call=self.call)] if self.peer else []


@dataclass(frozen=True)
class QueueChanged:
    """A consultant's queue changed: desks, waiting callers and the lobby must hear.

    `moved` is False when no waiting caller's place can have changed (a join at
    the tail, a drop or a comeback), which spares re-reading every position.
    """

    consultant_id: int
    moved: bool = True


@dataclass(frozen=True)
class PresenceChanged:
    """A consultant's status (online, busy, away, offline) may have changed."""

    consultant_id: int


@dataclass(frozen=True)
class Released:
    """A socket lost its ticket to a newer socket that resumed it."""

    channel: str


Event = Tell | QueueChanged | PresenceChanged | Released


@dataclass
class Result:
    """A service's answer to its caller plus the events to publish after commit."""

    value: Any = None
    events: list[Event] = field(default_factory=list)
