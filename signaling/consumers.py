"""The WebSocket consumers: transport only.

Each frame is checked by `signaling.messages`, dispatched to `on_<type>`, which
calls one service of `consult.services` and sends the result; the service's
events are published after its transaction commits. Domain and protocol
errors become `error` frames; nothing a client sends closes a socket with 1011.
"""

import json
import logging
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from consult import selectors, services
from consult.errors import ConsultError
from consult.events import Route
from consult.ice import ice_servers
from consult.models import Consultant
from consult.observability import ERRORS, RELAYED

from . import audit, runtime
from .db import db
from .groups import LayerUnavailable, publish
from .messages import ProtocolError, parse

log = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_NOT_CONSULTANT = 4403
CLOSE_ABUSE = 4429
CLOSE_TRY_AGAIN = 1013
# Bad frames a socket may send in a burst before it is closed, and how fast
# that allowance comes back.
BAD_FRAME_BURST = 10
BAD_FRAMES_PER_SECOND = 0.2
# Frames after which the other party of a call may sit on another socket, or
# the call is over: the next relay asks the database again.
ROUTE_CHANGES = frozenset({"accepted", "resumed", "peer", "hangup"})


class TokenBucket:
    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


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
        # The other party of this socket's call, as the database last named it;
        # and the calls this socket has left, whose late frames are dropped.
        self.route: Route | None = None
        self.ended: set[int] = set()
        self.runtime = await runtime.current()
        await self.open()

    async def disconnect(self, code):
        """The socket is gone: what it held enters its grace period."""
        if not hasattr(self, "runtime"):
            return  # it never got as far as opening
        self.runtime.hub.forget(self)
        try:
            await self.dropped()
        except LayerUnavailable:
            log.warning("the other party was not told of a drop: Redis is down")

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
        except LayerUnavailable:
            # The database holds what the client did; it comes back with
            # `resume` (or by reopening its desk) once Redis is back.
            self.closing = True
            await self.close(code=CLOSE_TRY_AGAIN)
        else:
            audit.handled(self, message)

    async def close_for_abuse(self, why: str):
        log.info("closing %s socket: %s", self.role, why)
        self.closing = True
        await self.close(code=CLOSE_ABUSE)

    async def run(self, service, **kwargs):
        """Call a service, publish its events after commit, return its answer."""
        result = await db(service)(**kwargs)
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
        frame, call = event["frame"], event.get("call")
        if call in self.ended:
            return  # sent on a route that was cached before the call ended
        kind = frame.get("type", "")
        if kind in ROUTE_CHANGES:
            self.route = None
        if event.get("peer"):
            self.route = Route(call, event["peer"])
        if kind == "hangup" and call is not None:
            self.ended.add(call)
        RELAYED.labels(kind).inc()
        await self.send(text_data=json.dumps(frame))

    async def on_ping(self):
        await self.send_frame("pong")

    async def relay(self, frame: dict):
        """Pass a frame to the other party of this socket's call.

        The route comes with the start of the call (`accepted` for the caller,
        the answer for the desk), or from the database after the other party
        moved; the frames reuse it, which keeps an ICE burst off the database.
        A route can only name a socket that is or was the other party of this
        call, and the receiver drops frames of calls it has left.
        """
        if self.route is not None:
            return await publish(self.route.tell(frame))
        self.learn(
            await self.run(
                services.consultation_relay,
                channel=self.channel_name,
                party=self.role,
                frame=frame,
            )
        )

    def learn(self, route: Route | None):
        # An absent party comes back on a new socket: ask again next time.
        self.route = route if route is not None and route.peer else None

    async def on_ice(self, candidate):
        await self.relay({"type": "ice", "candidate": candidate})

    async def on_offer(self, offer):
        await self.relay({"type": "offer", "offer": offer})

    async def on_hangup(self):
        self.route = None
        call = await self.run(
            services.consultation_end, channel=self.channel_name, party=self.role
        )
        self.ended.add(call)


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

    async def dropped(self):
        await self.run(services.caller_dropped, channel=self.channel_name)

    def watch(self, ticket, queued: dict):
        self.runtime.hub.watch_ticket(
            self,
            ticket.consultant_id,
            queued["ticket"],
            queued["position"],
            queued["eta_seconds"],
        )

    async def on_join(self, consultant, name, reason, audio_only, offer):
        ticket, queued = await self.run(
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
        self.watch(ticket, queued)
        await self.send_frame("queued", **queued)

    async def on_resume(self, token):
        kind, ticket, payload = await self.run(
            services.ticket_resume,
            token=token,
            channel=self.channel_name,
            process=self.runtime.process,
        )
        if kind == "queued":
            self.watch(ticket, payload)
        await self.send_frame(kind, **payload)

    async def on_ice(self, candidate):
        if self.route is not None:
            return await self.relay({"type": "ice", "candidate": candidate})
        self.learn(
            await self.run(
                services.ticket_add_candidate,
                channel=self.channel_name,
                candidate=candidate,
            )
        )

    async def ticket_released(self, event):
        """A newer socket resumed the ticket (see `services.ticket_resume`)."""
        self.route = None
        self.runtime.hub.unwatch_ticket(self)
        await self.send_error(
            "bad_token", "This ticket was resumed on another connection."
        )

    async def on_cancel(self):
        await self.run(services.ticket_cancel, channel=self.channel_name)
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
        self.consultant = await db(_consultant_of)(user)
        if self.consultant is None:
            return await self.close(code=CLOSE_NOT_CONSULTANT)
        self.runtime.hub.watch_desk(self, self.consultant.id)
        resumed = await self.run(
            services.desk_opened,
            consultant_id=self.consultant.id,
            channel=self.channel_name,
            process=self.runtime.process,
        )
        status, callers = await db(_desk_state)(self.consultant)
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

    async def dropped(self):
        if self.consultant is not None:
            await self.run(
                services.desk_closed,
                consultant_id=self.consultant.id,
                channel=self.channel_name,
            )

    async def receive(self, text_data=None, bytes_data=None):
        if self.consultant is not None:
            await super().receive(text_data, bytes_data)

    async def on_status(self, status):
        await self.run(
            services.consultant_set_presence,
            consultant_id=self.consultant.id,
            presence=status,
        )

    async def on_accept(self, ticket):
        caller = await self.run(
            services.ticket_accept,
            consultant_id=self.consultant.id,
            channel=self.channel_name,
            process=self.runtime.process,
            ticket_id=ticket,
        )
        await self.send_frame("caller", **caller)

    async def on_answer(self, answer):
        self.learn(
            await self.run(
                services.consultation_answer, channel=self.channel_name, answer=answer
            )
        )

    async def on_refuse(self, ticket, reason):
        await self.run(
            services.ticket_refuse,
            consultant_id=self.consultant.id,
            ticket_id=ticket,
            reason=reason,
        )


def _consultant_of(user) -> Consultant | None:
    return Consultant.objects.filter(user=user).first()


def _desk_state(consultant: Consultant) -> tuple[str, list[dict]]:
    consultant.refresh_from_db(fields=["presence"])
    return selectors.consultant_presence(consultant), selectors.queue_for(consultant.id)
