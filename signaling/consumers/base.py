"""What both consumers share: rate limits, dispatch, errors, relays, departures.

Each frame is checked by `signaling.messages`, dispatched to `on_<type>`, which
calls one service of `consult.services` and sends the result; the service's
events are published after its transaction commits. Domain and protocol
errors become `error` frames; nothing a client sends closes a socket with 1011.
"""

import asyncio
import contextlib
import json
import logging

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone, translation

from consult import services
from consult.database import DatabaseUnavailable, database_call
from consult.errors import ConsultError, NotInCall

from .. import audit, runtime
from ..groups import LayerUnavailable, publish
from ..language import socket_language
from ..limits import TokenBucket
from ..messages import ProtocolError, parse
from ..metrics import ERRORS, RELAYED
from ..routes import CallRoutes

log = logging.getLogger(__name__)

CLOSE_NOT_LOGGED_IN = 4401
CLOSE_NOT_CONSULTANT = 4403
CLOSE_ABUSE = 4429
# "Try again later": the standard 1013 cannot be sent, daphne's WebSocket
# library (autobahn) lets an application close only with 1000 or 3000-4999.
CLOSE_TRY_AGAIN = 4013
# A newer desk of the same consultant took over: the page must not reconnect
# by itself, or two tabs would take the call from each other for ever.
CLOSE_TAKEN_OVER = 4409
TAKEN_OVER = "taken_over"
# Bad frames a socket may send in a burst before it is closed, and how fast
# that allowance comes back.
BAD_FRAME_BURST = 10
BAD_FRAMES_PER_SECOND = 0.2
# Call-quality summaries (`stats`) a socket may send: one every few seconds;
# more are dropped unanswered (docs/protocol.md).
STATS_PER_SECOND = 0.5
STATS_BURST = 3
# Outages of Redis or the database (each after its own retries): the socket is
# closed with 4013 (try again), never 1011.
OUTAGES = (LayerUnavailable, DatabaseUnavailable)


class SignalingConsumer(AsyncWebsocketConsumer):
    role = ""

    async def connect(self):
        self.closing = False
        self.language = socket_language(self.scope)
        self.frames = TokenBucket(
            settings.CONSULT_RATE_PER_SECOND, settings.CONSULT_RATE_BURST
        )
        self.bad_frames = TokenBucket(BAD_FRAMES_PER_SECOND, BAD_FRAME_BURST)
        self.stats_frames = TokenBucket(STATS_PER_SECOND, STATS_BURST)
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
        left_at = timezone.now()
        try:
            await self.call_service(service, **kwargs)
        except LayerUnavailable:
            log.warning("the other party was not told of a drop: Redis is down")
        except DatabaseUnavailable:
            # Nothing may stay held by a socket that is gone: the repair pass
            # of this process settles it once the database answers again,
            # with the grace counted from now.
            self.runtime.settle_later(service, **kwargs, at=left_at)
        except asyncio.CancelledError:
            # The server cancels a departure that outlasts its close timeout.
            self.runtime.settle_later(service, **kwargs, at=left_at)
            raise

    async def close_to_retry(self):
        """Close with 4013 (try again): the database holds what the client did; it comes
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
            await self.send_error(error.code, error.message, **error.details)
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

    async def send_error(self, code: str, message: str, **details):
        """`error`; its `message` (lazily translated) in the socket's language."""
        ERRORS.labels(code).inc()
        audit.refused(self, code)
        with translation.override(self.language):
            message = str(message)
        await self.send_frame("error", code=code, message=message, **details)

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

    async def on_tracks(self, muted, camera_off, audio_only):
        frame = {"muted": muted, "camera_off": camera_off, "audio_only": audio_only}
        await self.relay({"type": "tracks", **frame})

    async def on_watchdog(self, step, recovered):
        await self.call_service(
            services.consultation_watchdog,
            channel=self.channel_name,
            party=self.role,
            step=step,
            recovered=recovered,
        )

    async def on_media(self, state):
        await self.call_service(
            services.consultation_media_connected,
            channel=self.channel_name,
            party=self.role,
        )

    async def on_record_stop(self):
        await self.call_service(
            services.recording_stop, channel=self.channel_name, party=self.role
        )

    async def send_recording(self, consultation: int):
        """After a comeback: the call's recording as it stands, if one is open."""
        frame = await database_call(services.recording_status)(
            consultation_id=consultation
        )
        if frame is None:
            return
        ask = frame.pop("ask", None)
        if self.role == "caller" and ask:
            frame = ask  # still to answer: the question again
        await self.send(text_data=json.dumps(frame))

    async def on_stats(self, **sample):
        if not self.stats_frames.take():
            return
        with contextlib.suppress(NotInCall):
            # A summary that crossed the end of the call has nowhere to go.
            await self.call_service(
                services.quality_record,
                channel=self.channel_name,
                party=self.role,
                sample=sample,
            )

    async def on_hangup(self):
        self.routes.forget()
        call = await self.call_service(
            services.consultation_end, channel=self.channel_name, party=self.role
        )
        self.routes.end(call)
