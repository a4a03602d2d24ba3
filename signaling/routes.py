"""A socket's cached route to the other party of its call.

The route comes with the start of the call (`accepted` for the caller, the
answer for the desk), or from the database after the other party moved; later
frames reuse it, which keeps an ICE burst off the database. A route can only
name a socket that is or was the other party of this call, and the receiver
drops frames of calls it has left. What invalidates the route is said by the
delivery itself (`consult.events.SendFrame`'s flags), never guessed from the
frame's type.
"""

from typing import Any

from consult.events import Route


class CallRoutes:
    def __init__(self):
        self.current: Route | None = None
        # Calls this socket has left: late frames of theirs are dropped. Most
        # sockets leave none, and the empty frozenset is one shared object (an
        # empty set is 216 bytes of every waiting caller).
        self.ended: frozenset[int] = frozenset()

    def remember(self, route: Route | None) -> None:
        # An absent party comes back on a new socket: ask again next time.
        self.current = route if route is not None and route.channel else None

    def forget(self) -> None:
        self.current = None

    def end(self, call: int) -> None:
        self.current = None
        self.ended |= {call}

    def deliverable(self, event: dict[str, Any]) -> bool:
        """Apply a `relay.frame` event's route flags; False for a straggler of a
        call this socket has left (it was sent on a route cached before the end)."""
        call = event.get("call")
        if call in self.ended:
            return False
        if event.get("stale_route"):
            self.current = None
        if event.get("reply_to"):
            self.current = Route(call, event["reply_to"])
        if event.get("ends_call") and call is not None:
            self.ended |= {call}
        return True
