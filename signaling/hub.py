"""This process's fan-out of `consultants`, `position` and `queue` to its sockets.

Every process has one hub in the `consult.hub` group. A queue or presence
change reaches each hub once; the hub reads the new state from the database
once and writes it to each of its sockets that cares. Pushes are coalesced per
key: the first change is pushed at once, further changes within the window
are merged into one push at its end, with the state as it is then.

The registries below only say which of this process's sockets watch what;
the queue itself lives in the database.
"""

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable

from django.conf import settings

from consult import selectors
from consult.database import database_call

log = logging.getLogger(__name__)

LOBBY = ("lobby",)


class Coalescer:
    """Run `push(key)` at once, then at most once a window while changes come."""

    def __init__(self, window: float, push: Callable[[Hashable], Awaitable[None]]):
        self.window = window
        self.push = push
        self.open: set = set()
        self.dirty: set = set()
        self.tasks: set[asyncio.Task] = set()

    def changed(self, key: Hashable) -> None:
        if key in self.open:
            self.dirty.add(key)
            return
        self.open.add(key)
        task = asyncio.get_running_loop().create_task(self._run(key))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, key):
        try:
            while True:
                # Changes until now are in this push's read: a service that
                # reports two changes at once (an accept: the queue and the
                # presence) costs one push, not a second one a window later.
                self.dirty.discard(key)
                try:
                    await self.push(key)
                except Exception:
                    log.exception("push of %s failed", key)
                await asyncio.sleep(self.window)
                if key not in self.dirty:
                    return
        finally:
            self.open.discard(key)


class Hub:
    def __init__(self):
        self.lobby: set = set()
        self.desks: dict[int, set] = defaultdict(set)
        # consultant id -> {consumer: ticket id}; the last position sent per consumer.
        self.waiting: dict[int, dict] = defaultdict(dict)
        self.sent_position: dict = {}
        self.sent_message: dict = {}
        # The lobby as last read, and whether a change has come in since.
        self.lobby_state: list[dict] | None = None
        self.lobby_stale = True
        self.coalescer = Coalescer(settings.CONSULT_COALESCE_SECONDS, self._push)

    # --- who watches what -----------------------------------------------------

    def watch_lobby(self, consumer) -> None:
        self.lobby.add(consumer)

    def watch_desk(self, consumer, consultant_id: int) -> None:
        self.desks[consultant_id].add(consumer)

    def watch_ticket(
        self,
        consumer,
        consultant_id: int,
        ticket: str,
        position: int,
        estimate,
        message: str,
    ):
        """Push `position` and `consultant_message` to `consumer` from now on;
        `estimate` and `message` are what it was last told: (eta_seconds,
        wait_range frame) and the consultant's queue message."""
        self.waiting[consultant_id][consumer] = ticket
        self.sent_position[consumer] = (position, estimate)
        self.sent_message[consumer] = message

    def unwatch_ticket(self, consumer) -> None:
        for watchers in self.waiting.values():
            watchers.pop(consumer, None)
        self.sent_position.pop(consumer, None)
        self.sent_message.pop(consumer, None)

    def sockets(self) -> list:
        """Every socket of this process that has opened (callers watch the lobby)."""
        desks = [consumer for watchers in self.desks.values() for consumer in watchers]
        return [*self.lobby, *desks]

    def forget(self, consumer) -> None:
        self.lobby.discard(consumer)
        for desks in self.desks.values():
            desks.discard(consumer)
        self.unwatch_ticket(consumer)

    # --- changes ----------------------------------------------------------------

    def queue_changed(
        self, consultant_id: int, *, moved: bool = True, left: str = ""
    ) -> None:
        if left:
            watchers = self.waiting.get(consultant_id, {})
            for consumer in [c for c, ticket in watchers.items() if ticket == left]:
                self.unwatch_ticket(consumer)
        self._lobby_changed()
        self.coalescer.changed(("queue", consultant_id))
        if moved:
            self.coalescer.changed(("positions", consultant_id))

    def presence_changed(self, consultant_id: int) -> None:
        self._lobby_changed()
        # The wait estimate depends on presence; desks hear of a status
        # change through their `queue` push (docs/protocol.md, 5.1).
        self.coalescer.changed(("positions", consultant_id))
        self.coalescer.changed(("queue", consultant_id))

    def resync(self) -> None:
        """Push all this process's sockets watch again: changes may have been lost."""
        self._lobby_changed()
        for consultant_id in list(self.desks):
            self.coalescer.changed(("queue", consultant_id))
        for consultant_id in list(self.waiting):
            self.coalescer.changed(("positions", consultant_id))

    def _lobby_changed(self) -> None:
        self.lobby_stale = True
        self.coalescer.changed(LOBBY)

    async def consultants(self) -> list[dict]:
        """The lobby for a new socket of the lobby, as last read.

        When a change has come in since, a push with the new state is due within
        the coalescing window, and it reaches this socket too: so the `hello`
        of every new socket does not cost a read while changes come fast.
        """
        if self.lobby_state is None:
            return await self._read_lobby()
        if self.lobby_stale:
            self.coalescer.changed(LOBBY)
        return self.lobby_state

    async def _read_lobby(self) -> list[dict]:
        self.lobby_stale = False
        self.lobby_state = await database_call(selectors.consultants_for_lobby)()
        return self.lobby_state

    async def _push(self, key) -> None:
        kind = key[0]
        if kind == "lobby":
            await self._push_lobby()
        elif kind == "queue":
            await self._push_queue(key[1])
        else:
            await self._push_positions(key[1])

    async def _push_lobby(self) -> None:
        if self.lobby:
            consultants = await self._read_lobby()
            frame = {"type": "consultants", "consultants": consultants}
            await _send_all(list(self.lobby), frame)

    async def _push_queue(self, consultant_id: int) -> None:
        desks = list(self.desks.get(consultant_id, ()))
        if desks:
            queue = await database_call(selectors.desk_queue)(consultant_id)
            await _send_all(desks, {"type": "queue", **queue})

    async def _push_positions(self, consultant_id: int) -> None:
        watchers = dict(self.waiting.get(consultant_id, {}))
        if not watchers:
            return

        order, estimate, message = await database_call(selectors.waiting_state)(
            consultant_id
        )
        index = {ticket: i + 1 for i, ticket in enumerate(order)}
        for consumer, ticket in watchers.items():
            position = index.get(ticket)
            if position is None:
                # No longer waiting: accepted, refused or ended elsewhere.
                self.waiting[consultant_id].pop(consumer, None)
                continue
            if self.sent_message.get(consumer) != message:
                self.sent_message[consumer] = message
                frame = {"type": "consultant_message", "text": message}
                await _send(consumer, json.dumps(frame))
            eta, span = estimate(position)
            current = (position, (eta, span.as_frame() if span else None))
            if self.sent_position.get(consumer) == current:
                continue
            self.sent_position[consumer] = current
            frame = {
                "type": "position",
                "position": position,
                "eta_seconds": eta,
                "wait_range": current[1][1],
            }
            await _send(consumer, json.dumps(frame))


async def _send(consumer, text: str) -> None:
    try:
        await consumer.push(text)
    except Exception:
        log.debug("push to a closing socket dropped", exc_info=True)


async def _send_all(consumers: list, frame: dict) -> None:
    text = json.dumps(frame)  # serialised once for every socket
    for consumer in consumers:
        await _send(consumer, text)
