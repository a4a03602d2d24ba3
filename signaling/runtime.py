"""This server process: its id, its hub, and the heartbeat that sweeps expired graces.

Started on the first connection or request a process serves (daphne has no
lifespan events; under uvicorn, lifespan startup starts it). Every process
probes its own event loop's lag (`signaling.admission`) and runs the same two
loops: one proves it is alive in the database; the other re-joins the hub
group (a restarted Redis has forgotten it) and sweeps what outlived its grace
period. Sweeping in every process at once is safe: see
`consult.services.sweep`.
"""

import asyncio
import logging
import sys
import uuid
from collections.abc import Callable

from channels.layers import get_channel_layer
from django.conf import settings

from consult import services
from consult.database import database_call
from consult.events import Result

from .admission import Admission
from .groups import (
    HUB_GROUP,
    HUB_PRESENCE,
    HUB_QUEUE,
    SEND_PATIENCE_SECONDS,
    desk_group,
    leave_groups,
    publish,
)
from .hub import Hub

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.process = uuid.uuid4().hex
        self.hub = Hub()
        self.admission = Admission()
        self.layer = get_channel_layer()
        self.channel = ""
        self.tasks: list[asyncio.Task] = []
        # Departures of sockets whose clean-up met a database outage.
        self.unsettled: list[tuple[Callable[..., Result], dict]] = []

    def settle_later(self, service: Callable[..., Result], **kwargs) -> None:
        """Run this clean-up service in the next repair pass (and until it succeeds)."""
        self.unsettled.append((service, kwargs))

    async def start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(HUB_GROUP, self.channel)
        await database_call(services.process_heartbeat)(
            process=self.process, channel=self.channel
        )
        self.tasks = [
            self.loop.create_task(self.admission.run()),
            self.loop.create_task(self._listen()),
            self.loop.create_task(self._beat()),
            self.loop.create_task(self._sweep()),
        ]
        self._stop_with_daphne()
        log.info("server process %s started", self.process)

    def _stop_with_daphne(self) -> None:
        """Under daphne (no lifespan events), stop cleanly when it shuts down, so
        that the others sweep this process at once (`process_stopped`)."""
        reactor = sys.modules.get("twisted.internet.reactor")
        if reactor is None or not reactor.running:
            return  # uvicorn: the lifespan shutdown calls `stop()`
        from twisted.internet import defer

        reactor.addSystemEventTrigger(
            "before",
            "shutdown",
            lambda: defer.Deferred.fromFuture(self.loop.create_task(self.stop())),
        )

    async def stop(self) -> None:
        """Stop the loops, leave every group at once, and say so in the database."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        desks = [
            (consultant_id, consumer.channel_name)
            for consultant_id, consumers in self.hub.desks.items()
            for consumer in consumers
        ]
        try:
            async with asyncio.timeout(SEND_PATIENCE_SECONDS):
                await leave_groups(self.channel, desks)
        except Exception:
            # Redis is away: the others' repair pass takes it out instead.
            log.exception("process %s could not leave its groups", self.process)
        await database_call(services.process_stopped)(process=self.process)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:
                log.exception("hub receive failed; trying again")
                await asyncio.sleep(1)
                continue
            kind, consultant = message.get("type"), message.get("consultant")
            if kind == HUB_QUEUE:
                self.hub.queue_changed(
                    consultant,
                    moved=message.get("moved", True),
                    left=message.get("left", ""),
                )
            elif kind == HUB_PRESENCE:
                self.hub.presence_changed(consultant)

    async def _beat(self) -> None:
        # Apart from the sweep: waiting on a Redis outage here would let the
        # other processes take this one for dead and drop all its sockets.
        while True:
            await asyncio.sleep(settings.CONSULT_HEARTBEAT_SECONDS)
            await self.beat()

    async def beat(self) -> None:
        """Prove this process alive; if it was taken for dead meanwhile, close its
        sockets (4013) so that their clients resume at once."""
        try:
            alive = await database_call(services.process_heartbeat)(
                process=self.process, channel=self.channel
            )
        except Exception:
            log.exception("heartbeat failed; trying again")
            return
        if not alive:
            sockets = self.hub.sockets()
            log.warning(
                "process %s was taken for dead; closing its %d sockets",
                self.process,
                len(sockets),
            )
            for consumer in sockets:
                try:
                    await consumer.close_to_retry()
                except Exception:
                    # One socket that cannot be closed must not keep the
                    # others open, nor stop the heartbeat.
                    log.exception("closing a socket failed")

    async def _sweep(self) -> None:
        while True:
            try:
                # While Redis is down this fails and the sweep waits, so
                # that what it ends is told once Redis can carry it.
                if await self.layer.group_add(HUB_GROUP, self.channel):
                    # Redis restarted and forgot the groups: what was published
                    # to them since is lost, so push everything again, and put
                    # the desks back in their consultants' groups.
                    self.hub.resync()
                    await self.rejoin_desk_groups()
                await self.settle()
                result = await database_call(services.sweep)()
                await publish(result.events)
            except Exception:
                log.exception("sweep failed; trying again")
            await asyncio.sleep(settings.CONSULT_HEARTBEAT_SECONDS)

    async def rejoin_desk_groups(self) -> None:
        for consultant_id, desks in list(self.hub.desks.items()):
            for consumer in list(desks):
                await self.layer.group_add(
                    desk_group(consultant_id), consumer.channel_name
                )

    async def settle(self) -> None:
        """Run the departures that met an outage, in order, up to a failure."""
        pending, self.unsettled = self.unsettled, []
        for index, (service, kwargs) in enumerate(pending):
            try:
                result = await database_call(service)(**kwargs)
            except Exception:
                # Keep order: this one and every later one wait for next time.
                self.unsettled[:0] = pending[index:]
                raise
            await publish(result.events)


_current: Runtime | None = None
_starting: asyncio.Task | None = None


async def current() -> Runtime:
    """This process's runtime on the running event loop, started on first use."""
    global _current, _starting
    loop = asyncio.get_running_loop()
    failed = (
        _starting is not None
        and _starting.done()
        and not _starting.cancelled()
        and (_starting.exception() is not None)
    )
    if _current is None or _current.loop is not loop or failed:
        _current = Runtime(loop)
        _starting = loop.create_task(_current.start())
    await asyncio.shield(_starting)
    return _current


async def stop() -> None:
    global _current
    if _current is not None and _current.loop is asyncio.get_running_loop():
        await _current.stop()
    _current = None


class StartRuntime:
    """ASGI middleware: make sure the runtime runs before serving anything."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        try:
            await current()
        except Exception:
            # Pages (a login above all) need neither Redis nor the runtime:
            # while it cannot start, serve them anyway; a later request retries.
            if scope["type"] != "http":
                raise
            log.warning("runtime not started (Redis away?); serving the page")
        return await self.app(scope, receive, send)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await current()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
