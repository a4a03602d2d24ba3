"""Limits on sockets: open sockets per client address, frames per socket.

Sockets are counted by an ASGI middleware in front of the consumers, per
server process (a process knows its own sockets exactly, and its counts die
with it); the proxy's `limit_conn` caps the sum across processes. A socket
over the cap is accepted and closed at once with 4429, the contract's code
for abuse, so that a client can tell why. The middleware also puts the
client's address in the scope, counts open sockets for /metrics and logs
each socket's open and close. (Tickets waiting per address are capped by
`consult.services.ticket_create`, from the database.)

Joins are rate-limited per socket and per address (`join_wait`).
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

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        """Spend one token if there is one; False means over the limit."""
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def wait(self) -> float:
        """Seconds until a token is there (0: one is there now)."""
        self._refill()
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else float("inf")

    @property
    def full(self) -> bool:
        self._refill()
        return self.tokens >= self.burst


class AddressBuckets:
    """A token bucket per client address, in this process. Buckets that have
    filled up again are forgotten once there are many (an address that comes
    back starts full, as it would be anyway)."""

    MAX = 10_000

    def __init__(self):
        self.buckets: dict[str, TokenBucket] = {}

    def get(self, address: str, rate: float, burst: float) -> TokenBucket:
        bucket = self.buckets.get(address)
        if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
            if len(self.buckets) >= self.MAX:
                self.buckets = {a: b for a, b in self.buckets.items() if not b.full}
            bucket = self.buckets[address] = TokenBucket(rate, burst)
        return bucket

    def clear(self) -> None:
        self.buckets.clear()


# Joins per client address, across this process's sockets (see `join_wait`).
JOINS_PER_ADDRESS = AddressBuckets()


def socket_joins() -> TokenBucket:
    """A new caller socket's own bucket of joins."""
    return TokenBucket(
        settings.CONSULT_JOINS_PER_MINUTE_PER_SOCKET / 60,
        settings.CONSULT_JOIN_BURST_PER_SOCKET,
    )


def join_wait(own: TokenBucket, address: str) -> float:
    """0 if a join may go ahead now (one token is taken from the socket's bucket
    `own` and from its address's), else the seconds to wait, taking nothing.

    Joins cost a database write each, and used to cost history rows too: these
    buckets bound how fast one socket, and one address however many sockets
    it opens, can make them (`too_many_joins`). Like the socket cap, the
    address's bucket is per server process.
    """
    buckets = [own]
    if address:
        buckets.append(
            JOINS_PER_ADDRESS.get(
                address,
                settings.CONSULT_JOINS_PER_MINUTE_PER_ADDRESS / 60,
                settings.CONSULT_JOIN_BURST_PER_ADDRESS,
            )
        )
    wait = max(bucket.wait() for bucket in buckets)
    if wait == 0:
        for bucket in buckets:
            bucket.take()
    return wait
