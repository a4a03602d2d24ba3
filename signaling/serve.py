"""`python -m signaling.serve [daphne's options] config.asgi:application`: daphne,
with each WebSocket's keep-alive pings at a random phase of their interval.

Daphne pings from one timer (every 2 s) each socket whose `--ping-interval` is
up since it opened or last spoke, so sockets that opened together are pinged
together, interval after interval: 10,000 lobby sockets opened in a few seconds
got their pings in a few bursts, and a lobby change that met one took over a
second (docs/benchmarks.md, "Third round"). Here a socket's first ping comes
after a random share of the interval and the next ones an interval apart, so
pings go out spread over the interval; timeouts and everything else are
daphne's. Options and behaviour are otherwise those of the `daphne` command.
"""

import random
import time

from daphne.cli import CommandLineInterface
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol


class SpreadPingProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol, its ping schedule shifted by a random phase."""

    def onOpen(self):
        # Daphne pings once `now - last_ping` exceeds the interval.
        self.last_ping = time.time() - random.uniform(0, self.server.ping_interval)  # noqa: S311 (spread, not secrecy)
        super().onOpen()


class SpreadPingServer(Server):
    """Daphne's server, its WebSocket factory building `SpreadPingProtocol`s."""

    # `Server.run()` makes the factory; the protocol it builds is chosen here,
    # where it is set, before the server listens.
    @property
    def ws_factory(self):
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory):
        factory.protocol = SpreadPingProtocol
        self._ws_factory = factory


class SpreadPingCommandLine(CommandLineInterface):
    server_class = SpreadPingServer


if __name__ == "__main__":
    SpreadPingCommandLine.entrypoint()
