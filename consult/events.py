"""What the domain tells the world after a write commits, and what services return.

Services return a `Result` instead of sending anything: whoever called the
service (a consumer, the repair pass) publishes its events once the
transaction is over, so nobody hears of a row that may still roll back.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from asgiref.sync import async_to_sync
from django.db import transaction

T = TypeVar("T")


@dataclass(frozen=True)
class SendFrame:
    """Send one frame to one socket, named by the database, never by a client.

    `call` names the consultation the frame belongs to. The other fields say
    what the frame does to the receiver's cached route (see `Route`); they are
    flags on the delivery, so equality compares only where and what is sent:
    - `reply_to`: the sender's socket, the receiver's route in that call from now;
    - `stale_route`: the other party moved or left; ask the database next time;
    - `ends_call`: the call is over; drop its later frames.
    """

    channel: str
    frame: dict[str, Any]
    call: int | None = None
    reply_to: str = field(default="", compare=False)
    stale_route: bool = field(default=False, compare=False)
    ends_call: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Route:
    """Where a party's frames go in a call: the other party's socket, "" while away.

    The database gives it once; a consumer reuses it for the call's later
    frames until a `SendFrame` says it went stale.
    """

    call: int
    channel: str

    def send(self, frame: dict[str, Any]) -> list["SendFrame"]:
        return [SendFrame(self.channel, frame, call=self.call)] if self.channel else []


@dataclass(frozen=True)
class QueueChanged:
    """A consultant's queue changed: desks, waiting callers and the lobby must hear.

    `moved` is False when no waiting caller's place can have changed (a join at
    the tail, a drop or a comeback), which spares re-reading every position.
    `left` is the id of a ticket that left the queue (accepted, refused): its
    caller needs no position any more, so a queue left empty costs no read.
    """

    consultant_id: int
    moved: bool = True
    left: str = ""


@dataclass(frozen=True)
class PresenceChanged:
    """A consultant's status (online, busy, away, offline) may have changed."""

    consultant_id: int


@dataclass(frozen=True)
class Released:
    """A socket lost what it held (a ticket, a call) to a newer socket of the
    same party: a caller's `resume`, a consultant's newer desk."""

    channel: str


@dataclass(frozen=True)
class DesksRevoked:
    """Every desk socket of a consultant must close now, with `code` (4401: no
    longer logged in; 4403: no longer a consultant)."""

    consultant_id: int
    code: int


@dataclass(frozen=True)
class ProcessGone:
    """A server process was taken for dead: its hub `channel` and its desk sockets
    (consultant id, channel name) must leave the groups they joined, or every
    event sent to those groups would still be written to their inboxes."""

    channel: str
    desks: tuple[tuple[int, str], ...] = ()


Event = (
    SendFrame | QueueChanged | PresenceChanged | Released | DesksRevoked | ProcessGone
)


@dataclass
class Result(Generic[T]):
    """A service's answer to its caller (typed per service) and the events to
    publish after commit."""

    value: T = None  # type: ignore[assignment]
    events: list[Event] = field(default_factory=list)


# The transport's publisher, registered by the app that carries events (the
# domain knows no channel layer): the transport app registers its `publish`.
_publisher: Callable[[list[Event]], Awaitable[None]] | None = None


def register_publisher(publish: Callable[[list[Event]], Awaitable[None]]) -> None:
    global _publisher
    _publisher = publish


def publish_on_commit(events: list[Event]) -> None:
    """For sync callers (the admin): publish `events` once the transaction that
    wrote them has committed (at once outside a transaction)."""
    if _publisher is not None and events:
        publish = _publisher
        transaction.on_commit(lambda: async_to_sync(publish)(events))
