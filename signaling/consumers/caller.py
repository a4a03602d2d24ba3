"""`/ws/call/`: the caller's socket."""

import math

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from consult import errors, services
from consult.ice import ice_servers

from ..limits import join_wait, socket_joins
from .base import TAKEN_OVER, SignalingConsumer


class CallerConsumer(SignalingConsumer):
    """`/ws/call/`: a caller joins a queue with its offer and waits for an answer."""

    role = "caller"

    async def open(self):
        self.joins = socket_joins()
        await self.accept()
        self.runtime.hub.watch_lobby(self)
        consultants = await self.runtime.hub.consultants()
        await self.send_frame(
            "hello",
            role="caller",
            ice_servers=ice_servers(),
            consultants=consultants,
            connect_seconds=settings.CONSULT_CONNECT_SECONDS,
        )
        await self.greeted()

    def admit(self, what: str) -> None:
        """New work only while this process keeps up (`signaling.admission`)."""
        retry_after = self.runtime.admission.turn_away(what)
        if retry_after is not None:
            raise errors.TryLater(retry_after=retry_after)

    def departure(self):
        return services.caller_dropped, {"channel": self.channel_name}

    def watch(self, ticket, queued: dict):
        self.runtime.hub.watch_ticket(
            self,
            ticket.consultant_id,
            queued["ticket"],
            queued["position"],
            (queued["eta_seconds"], queued["wait_range"]),
            queued["consultant_message"],
        )

    async def on_join(
        self,
        consultant,
        name,
        reason,
        audio_only,
        connectivity,
        offer,
        altcha,
        move_token,
    ):
        self.admit("join")
        address = self.scope.get("client_address", "")
        wait = join_wait(self.joins, address)
        if wait:
            raise errors.TooManyJoins(retry_after=math.ceil(wait))
        service, seniority = services.ticket_create, {}
        if move_token:
            service, seniority = services.ticket_move, {"move_token": move_token}
        joined = await self.call_service(
            service,
            **seniority,
            address=address,
            proof=altcha,
            consultant_slug=consultant,
            caller_name=name,
            reason=reason,
            audio_only=audio_only,
            connectivity=connectivity,
            language=self.language,
            offer=offer["sdp"],
            channel=self.channel_name,
            process=self.runtime.process,
        )
        self.watch(joined.ticket, joined.queued)
        await self.send_frame("queued", **joined.queued)

    async def on_callback(self, consultant, name, contact, reason):
        # A callback costs a write and holds personal data: it takes from the
        # same allowance as a join.
        self.admit("callback")
        address = self.scope.get("client_address", "")
        wait = join_wait(self.joins, address)
        if wait:
            raise errors.TooManyJoins(retry_after=math.ceil(wait))
        await self.call_service(
            services.callback_request,
            consultant_slug=consultant,
            caller_name=name,
            contact=contact,
            reason=reason,
            address=address,
        )
        await self.send_frame("callback_noted")

    async def on_notify(self, email, place):
        # An e-mail to an address the caller typed: as dear as a join.
        wait = join_wait(self.joins, self.scope.get("client_address", ""))
        if wait:
            raise errors.TooManyJoins(retry_after=math.ceil(wait))
        await self.call_service(
            services.ticket_notify,
            channel=self.channel_name,
            email=email,
            place=place,
            language=self.language,
        )
        await self.send_frame("notify_set", place=place)

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
        if resumption.kind == "resumed":
            await self.send_recording(resumption.payload["consultation"])
        if resumption.answer_within is not None:
            # The question came to the old socket: ask again on this one.
            await self.send_frame(
                "still_there", answer_within_seconds=resumption.answer_within
            )

    async def on_record_consent(self, recording, accept):
        await self.call_service(
            services.recording_answer,
            channel=self.channel_name,
            recording_id=recording,
            accept=accept,
            address=self.scope.get("client_address", ""),
        )

    async def on_here(self):
        await self.call_service(services.ticket_still_here, channel=self.channel_name)
        await self.send_frame("noted")

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

    async def socket_released(self, event):
        """A newer socket resumed the ticket (see `consult.services.ticket_resume`);
        this one stays open, and may take it back with `resume`."""
        self.routes.forget()
        self.runtime.hub.unwatch_ticket(self)
        await self.send_error(
            TAKEN_OVER, _("Your place or call continues in another tab.")
        )

    async def on_cancel(self):
        await self.call_service(services.ticket_cancel, channel=self.channel_name)
        self.runtime.hub.unwatch_ticket(self)
        await self.send_frame("cancelled")

    async def on_feedback(self, consultation, rating, comment):
        # Only a socket that held this call as its caller may rate it: the
        # calls it has left are the ones the server ended for it.
        if consultation not in self.routes.ended:
            raise errors.FeedbackRefused("There is no such call of yours.")
        await self.call_service(
            services.feedback_rate,
            consultation_id=consultation,
            rating=rating,
            comment=comment,
        )
        await self.send_frame("feedback_noted", consultation=consultation)

    async def on_answer(self, answer):
        await self.relay({"type": "answer", "answer": answer})
