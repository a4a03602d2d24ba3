"""The WebSocket consumers: transport only.

Each frame is checked by `signaling.messages`, dispatched to `on_<type>`, which
calls one service of `consult.services` and sends the result; the service's
events are published after its transaction commits. Domain and protocol
errors become `error` frames; nothing a client sends closes a socket with 1011.
"""

import asyncio
import json
import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from consult import selectors, services
from consult.database import DatabaseUnavailable, database_call
from consult.errors import ConsultError
from consult.ice import ice_servers

from . import audit, runtime
from .groups import LayerUnavailable, publish
from .limits import TokenBucket
from .messages import ProtocolError, parse
from .metrics import ERRORS, RELAYED
from .routes import CallRoutes

log = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_NOT_CONSULTANT = 4403
CLOSE_ABUSE = 4429
CLOSE_TRY_AGAIN = 1013
# Bad frames a socket may send in a burst before it is closed, and how fast
# that allowance comes back.
BAD_FRAME_BURST = 10
BAD_FRAMES_PER_SECOND = 0.2
# Outages of Redis or the database (each after its own retries): the socket is
# closed with 1013, never 1011.
OUTAGES = (LayerUnavailable, DatabaseUnavailable)


class SignalingConsumer(AsyncWebsocketConsumer):
    role = ""

    async def connect(self):
        self.closing = False
        self.frames = TokenBucket(
            settings.CONSULT_RATE_PER_SECOND, settings.CONSULT_RATE_BURST
        )
        self.bad_frames = TokenBucket(BAD_FRAMES_PER_SECOND, BAD_FRAME_BURST)
        # Hub pushes wait here until the socket has had its `hello`.
        self.held: list[str] | None = []
        self.routes = CallRoutes()
        self.runtime = await runtime.current()
        try:
            await self.open()
        except OUTAGES:
            await self.close_to_retry()

    async def disconnect(self, code):
        """The socket is gone: what it held enters its grace period."""
        if not hasattr(self, "runtime"):
            return  # it never got as far as opening
        self.runtime.hub.forget(self)
        departure = self.departure()
        if departure is None:
            return
        service, kwargs = departure
        try:
            await self.call_service(service, **kwargs)
        except LayerUnavailable:
            log.warning("the other party was not told of a drop: Redis is down")
        except (DatabaseUnavailable, asyncio.CancelledError):
            # Nothing may stay held by a socket that is gone: the repair pass
            # of this process settles it once the database answers again (the
            # server cancels a departure that outlasts its close timeout).
            self.runtime.settle_later(service, **kwargs)
            raise

    async def close_to_retry(self):
        """Close with 1013: the database holds what the client did; it comes
        back with `resume` (or by reopening its desk) once the outage is over."""
        self.closing = True
        await self.close(code=CLOSE_TRY_AGAIN)

    async def push(self, text: str):
        """A fan-out push from this process's hub."""
        if self.held is None:
            await self.send(text_data=text)
        else:
            self.held.append(text)

    async def greeted(self):
        """The opening frames are out: let the held pushes follow."""
        held, self.held = self.held or [], None
        for text in held:
            await self.send(text_data=text)

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        if not self.frames.take():
            return await self.close_for_abuse("too many frames")
        try:
            message = parse(text_data if bytes_data is None else bytes_data, self.role)
        except ProtocolError as error:
            if not self.bad_frames.take():
                return await self.close_for_abuse("too many bad frames")
            return await self.send_error(error.code, error.message)
        try:
            await getattr(self, f"on_{message.type}")(**message.fields)
        except ConsultError as error:
            await self.send_error(error.code, error.message)
        except OUTAGES:
            await self.close_to_retry()
        else:
            audit.handled(self, message)

    async def close_for_abuse(self, why: str):
        log.info("closing %s socket: %s", self.role, why)
        self.closing = True
        await self.close(code=CLOSE_ABUSE)

    async def call_service(self, service, **kwargs):
        """Call a service, publish its events after commit, return its answer."""
        result = await database_call(service)(**kwargs)
        await publish(result.events)
        return result.value

    async def send_frame(self, type_: str, **fields):
        await self.send(text_data=json.dumps({"type": type_, **fields}))

    async def send_error(self, code: str, message: str):
        ERRORS.labels(code).inc()
        audit.refused(self, code)
        await self.send_frame("error", code=code, message=message)

    async def relay_frame(self, event):
        """A frame the database routed to this socket (see `signaling.groups`)."""
        if self.routes.deliverable(event):
            RELAYED.labels(event["frame"].get("type", "")).inc()
            await self.send(text_data=json.dumps(event["frame"]))

    async def on_ping(self):
        await self.send_frame("pong")

    async def relay(self, frame: dict):
        """Pass a frame to the other party of this socket's call (see routes.py)."""
        if self.routes.current is not None:
            return await publish(self.routes.current.send(frame))
        self.routes.remember(
            await self.call_service(
                services.consultation_relay,
                channel=self.channel_name,
                party=self.role,
                frame=frame,
            )
        )

    async def on_ice(self, candidate):
        await self.relay({"type": "ice", "candidate": candidate})

    async def on_offer(self, offer):
        await self.relay({"type": "offer", "offer": offer})

    async def on_hangup(self):
        self.routes.forget()
        call = await self.call_service(
            services.consultation_end, channel=self.channel_name, party=self.role
        )
        self.routes.end(call)


class CallerConsumer(SignalingConsumer):
    """`/ws/call/`: a caller joins a queue with its offer and waits for an answer."""

    role = "caller"

    async def open(self):
        await self.accept()
        self.runtime.hub.watch_lobby(self)
        consultants = await self.runtime.hub.consultants()
        await self.send_frame(
            "hello", role="caller", ice_servers=ice_servers(), consultants=consultants
        )
        await self.greeted()

    def departure(self):
        return services.caller_dropped, {"channel": self.channel_name}

    def watch(self, ticket, queued: dict):
        self.runtime.hub.watch_ticket(
            self,
            ticket.consultant_id,
            queued["ticket"],
            queued["position"],
            queued["eta_seconds"],
        )

    async def on_join(self, consultant, name, reason, audio_only, offer):
        joined = await self.call_service(
            services.ticket_create,
            address=self.scope.get("client_address", ""),
            consultant_slug=consultant,
            caller_name=name,
            reason=reason,
            audio_only=audio_only,
            offer=offer["sdp"],
            channel=self.channel_name,
            process=self.runtime.process,
        )
        self.watch(joined.ticket, joined.queued)
        await self.send_frame("queued", **joined.queued)

    async def on_resume(self, token):
        resumption = await self.call_service(
            services.ticket_resume,
            token=token,
            channel=self.channel_name,
            process=self.runtime.process,
        )
        if resumption.kind == "queued":
            self.watch(resumption.ticket, resumption.payload)
        await self.send_frame(resumption.kind, **resumption.payload)

    async def on_ice(self, candidate):
        if self.routes.current is not None:
            return await self.relay({"type": "ice", "candidate": candidate})
        self.routes.remember(
            await self.call_service(
                services.ticket_add_candidate,
                channel=self.channel_name,
                candidate=candidate,
            )
        )

    async def ticket_released(self, event):
        """A newer socket resumed the ticket (see `consult.services.ticket_resume`)."""
        self.routes.forget()
        self.runtime.hub.unwatch_ticket(self)
        await self.send_error(
            "bad_token", "This ticket was resumed on another connection."
        )

    async def on_cancel(self):
        await self.call_service(services.ticket_cancel, channel=self.channel_name)
        self.runtime.hub.unwatch_ticket(self)
        await self.send_frame("cancelled")

    async def on_answer(self, answer):
        await self.relay({"type": "answer", "answer": answer})


class DeskConsumer(SignalingConsumer):
    """`/ws/desk/`: a logged-in consultant takes callers from their queue."""

    role = "consultant"

    async def open(self):
        self.consultant = None
        # Accept first: a close before accept reaches the client as a bare
        # HTTP 403, and the client could not tell 4401 from 4403.
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.close(code=CLOSE_NOT_LOGGED_IN)
        self.consultant = await database_call(selectors.consultant_for_user)(user)
        if self.consultant is None:
            return await self.close(code=CLOSE_NOT_CONSULTANT)
        self.runtime.hub.watch_desk(self, self.consultant.id)
        resumed = await self.call_service(
            services.desk_opened,
            consultant_id=self.consultant.id,
            channel=self.channel_name,
            process=self.runtime.process,
        )
        status, callers = await database_call(selectors.desk_state)(self.consultant)
        await self.send_frame(
            "hello",
            role="consultant",
            consultant={"slug": self.consultant.slug, "name": self.consultant.name},
            status=status,
            ice_servers=ice_servers(),
        )
        await self.send_frame("queue", callers=callers)
        if resumed:
            await self.send_frame("resumed", **resumed)
        await self.greeted()

    def departure(self):
        if self.consultant is None:
            return None
        kwargs = {"consultant_id": self.consultant.id, "channel": self.channel_name}
        return services.desk_closed, kwargs

    async def receive(self, text_data=None, bytes_data=None):
        if self.consultant is not None:
            await super().receive(text_data, bytes_data)

    async def on_status(self, status):
        await self.call_service(
            services.consultant_set_presence,
            consultant_id=self.consultant.id,
            presence=status,
        )

    async def on_accept(self, ticket):
        caller = await self.call_service(
            services.ticket_accept,
            consultant_id=self.consultant.id,
            channel=self.channel_name,
            process=self.runtime.process,
            ticket_id=ticket,
        )
        await self.send_frame("caller", **caller)

    async def on_answer(self, answer):
        self.routes.remember(
            await self.call_service(
                services.consultation_answer, channel=self.channel_name, answer=answer
            )
        )

    async def on_refuse(self, ticket, reason):
        await self.call_service(
            services.ticket_refuse,
            consultant_id=self.consultant.id,
            ticket_id=ticket,
            reason=reason,
        )
