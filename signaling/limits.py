"""Limits on sockets: open sockets per client address, frames per socket.

Sockets are counted by an ASGI middleware in front of the consumers, per
server process (a process knows its own sockets exactly, and its counts die
with it); the proxy's `limit_conn` caps the sum across processes. A socket
over the cap is accepted and closed at once with 4429, the contract's code
for abuse, so that a client can tell why. The middleware also puts the
client's address in the scope, counts open sockets for /metrics and logs
each socket's open and close. (Tickets waiting per address are capped by
`consult.services.ticket_create`, from the database.)
"""

import time
from collections import Counter

from django.conf import settings

from consult import logs
from consult.addresses import scope_address

from .metrics import SOCKETS_OPEN, SOCKETS_REFUSED

CLOSE_TOO_MANY = 4429
ROLES = {"/ws/call/": "caller", "/ws/desk/": "consultant"}


class SocketLimits:
    """ASGI middleware for WebSocket connections: caps, address, metrics, logs."""

    def __init__(self, app):
        self.app = app
        self.open = Counter()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        address = scope_address(scope)
        scope = dict(scope, client_address=address)
        who = {"role": ROLES.get(scope["path"], scope["path"]), "address": address}
        # Without an address (a Unix socket) there is nobody to count.
        if address and self.open[address] >= settings.CONSULT_MAX_SOCKETS_PER_ADDRESS:
            SOCKETS_REFUSED.inc()
            logs.event("socket.refused", code=CLOSE_TOO_MANY, **who)
            return await _refuse(receive, send)
        self.open[address] += 1
        SOCKETS_OPEN.labels(who["role"]).inc()
        closed = {}

        async def watched_send(message):
            if message["type"] == "websocket.close":
                closed.setdefault("code", message.get("code", 1000))
            await send(message)

        async def watched_receive():
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closed.setdefault("code", message.get("code", 1005))
            return message

        logs.event("socket.open", **who)
        try:
            return await self.app(scope, watched_receive, watched_send)
        finally:
            self.open[address] -= 1
            if not self.open[address]:
                del self.open[address]
            SOCKETS_OPEN.labels(who["role"]).dec()
            logs.event("socket.close", code=closed.get("code"), **who)


async def _refuse(receive, send):
    # Accept, then close: a close before accept reaches the client as a bare
    # HTTP 403, and it could not tell this from a refused origin.
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_TOO_MANY})


class TokenBucket:
    """A rate limit: `burst` takes at once, refilled at `rate` per second."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one; False means over the limit."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
