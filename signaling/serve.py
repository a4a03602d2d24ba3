"""`python -m signaling.serve [daphne's options] config.asgi:application`: daphne,
with each WebSocket's keep-alive pings at a random phase of their interval, its
options read from the factory rather than copied onto every socket, and the
handshake's copies of the headers let go once a socket is open.

Options and behaviour are otherwise those of the `daphne` command; the image
(deploy/Dockerfile), the tests' servers and the benchmark all run this.
"""

import asyncio
import random
import time
from functools import partial
from types import SimpleNamespace

from daphne import cli, server, ws_protocol


class WebSocketProtocol(ws_protocol.WebSocketProtocol):
    """Daphne's WebSocket protocol, pinging at a random phase, lighter when open."""

    def onOpen(self):
        # Daphne pings from one timer (every 2 s) each socket whose interval
        # is up since it opened or last spoke, so sockets that opened together
        # were pinged together, interval after interval: a burst of pings and
        # pongs on top of whatever else that tick does (docs/benchmarks.md,
        # "Third round"). Starting a socket's count at a random point of the
        # interval spreads the pings over it for good.
        self.last_ping = time.time() - random.uniform(0, self.server.ping_interval)  # noqa: S311 (spread, not secrecy)
        super().onOpen()
        # autobahn keeps the handshake (its bytes, the headers as a dict, and
        # that dict in the request) for the socket's life; only daphne's log
        # lines read anything of it later, the path. The scope has the headers.
        self.request = SimpleNamespace(path=self.request.path)
        self.http_headers = self.http_request_data = None


class FactoryOption:
    """A protocol option read from the protocol's factory, shared by its sockets.

    autobahn copies each of its options (29 of them) from the factory onto
    every protocol that has no such attribute, which took the protocol's
    `__dict__` into the next size up; with this attribute on the class there is
    nothing to copy. An instance's own value (`setTrackTimings()`) still wins.
    """

    def __init__(self, name: str):
        self.name = name

    def __get__(self, protocol, owner=None):
        if protocol is None:
            return self
        return getattr(protocol.factory, self.name)


for option in WebSocketProtocol.CONFIG_ATTRS:
    setattr(WebSocketProtocol, option, FactoryOption(option))


class Inbox:
    """A socket's input queue, as much of one as daphne and Channels use:
    `put_nowait()` by daphne, `get()` by one reader at a time.

    An `asyncio.Queue` is four deques and an Event, about 2.5 kB, for each of
    thousands of waiting sockets that receive a frame a minute.
    """

    __slots__ = ("items", "waiter")

    def __init__(self):
        self.items = []  # a handful at most: a socket's frames are rate-limited
        self.waiter = None

    def put_nowait(self, message: dict) -> None:
        self.items.append(message)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> dict:
        # A reader cancelled while it waited loses nothing: messages stay in
        # `items` until one is returned.
        while not self.items:
            if self.waiter is not None and not self.waiter.done():
                raise RuntimeError("a socket's input has one reader at a time")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.pop(0)


class Server(server.Server):
    """Daphne's server, its WebSocket factory building our `WebSocketProtocol`,
    its WebSocket applications reading an `Inbox`."""

    # `Server.run()` makes the factory; the protocol it builds is chosen here,
    # where it is set, before the server listens.
    @property
    def ws_factory(self):
        return self._ws_factory

    @ws_factory.setter
    def ws_factory(self, factory):
        factory.protocol = WebSocketProtocol
        self._ws_factory = factory

    def create_application(self, protocol, scope):
        if scope["type"] != "websocket":
            return super().create_application(protocol, scope)
        # daphne's own, with an Inbox for its asyncio.Queue.
        assert "application_instance" not in self.connections[protocol]  # noqa: S101
        inbox = Inbox()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=inbox.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance, loop=asyncio.get_event_loop()
        )
        return inbox


class CommandLineInterface(cli.CommandLineInterface):
    server_class = Server


if __name__ == "__main__":
    CommandLineInterface.entrypoint()
