"""`/ws/desk/`: the consultant's socket."""

import contextlib

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from consult import selectors, services
from consult.database import database_call
from consult.errors import TryLater
from consult.ice import ice_servers
from consult.models import Presence

from ..groups import desk_group
from ..layers import OUTAGE_ERRORS
from ..limits import TokenBucket
from .base import (
    CLOSE_NOT_CONSULTANT,
    CLOSE_NOT_LOGGED_IN,
    CLOSE_TAKEN_OVER,
    TAKEN_OVER,
    SignalingConsumer,
)

# Each change of a consultant's word to their queue reaches every waiting
# caller's page: a few at once, then one a minute, per consultant however many
# desk sockets they open (per server process; docs/protocol.md, queue_message).
QUEUE_MESSAGE_LIMITS: dict[int, TokenBucket] = {}


def queue_messages(consultant_id: int) -> TokenBucket:
    return QUEUE_MESSAGE_LIMITS.setdefault(consultant_id, TokenBucket(1 / 60, 3))


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
        # A desk that would bring its consultant online is new work; one that
        # comes back to a call or a queue (another tab, a reconnect) is not.
        if self.consultant.presence == Presence.OFFLINE:
            retry_after = self.runtime.admission.turn_away("desk")
            if retry_after is not None:
                self.consultant = None  # nothing opened, nothing to close
                await self.send_error(
                    TryLater.code, TryLater.message, retry_after=retry_after
                )
                return await self.close_to_retry()
        # Before the desk row exists: a revocation from now on reaches it.
        await self.channel_layer.group_add(
            desk_group(self.consultant.id), self.channel_name
        )
        self.runtime.hub.watch_desk(self, self.consultant.id)
        resumed = await self.call_service(
            services.desk_opened,
            consultant_id=self.consultant.id,
            channel=self.channel_name,
            process=self.runtime.process,
        )
        status, queue = await database_call(selectors.desk_state)(self.consultant)
        await self.send_frame(
            "hello",
            role="consultant",
            consultant={"slug": self.consultant.slug, "name": self.consultant.name},
            status=status,
            ice_servers=ice_servers(),
            queue_message=self.consultant.queue_message,
            connect_seconds=settings.CONSULT_CONNECT_SECONDS,
        )
        await self.send_frame("queue", **queue)
        if resumed:
            await self.send_frame("resumed", **resumed)
            await self.send_recording(resumed["consultation"])
        await self.greeted()

    def departure(self):
        if self.consultant is None:
            return None
        kwargs = {"consultant_id": self.consultant.id, "channel": self.channel_name}
        return services.desk_closed, kwargs

    async def disconnect(self, code):
        if getattr(self, "consultant", None) is not None:
            group = desk_group(self.consultant.id)
            with contextlib.suppress(*OUTAGE_ERRORS):
                await self.channel_layer.group_discard(group, self.channel_name)
        await super().disconnect(code)

    async def socket_released(self, event):
        """A newer desk of this consultant took the call (`services.desk_opened`)."""
        await self.send_error(TAKEN_OVER, _("This desk was opened in another tab."))
        self.closing = True
        await self.close(code=CLOSE_TAKEN_OVER)

    async def desks_revoked(self, event):
        """Logout, a new password or deactivation (`services.consultant_leave`)."""
        self.closing = True
        await self.close(code=event["code"])

    async def receive(self, text_data=None, bytes_data=None):
        if self.consultant is not None:
            await super().receive(text_data, bytes_data)

    async def on_status(self, status):
        await self.call_service(
            services.consultant_set_presence,
            consultant_id=self.consultant.id,
            presence=status,
        )

    async def on_queue_message(self, text):
        if not queue_messages(self.consultant.id).take():
            return await self.send_error(
                "too_fast", _("Wait a little before changing the message again.")
            )
        waiting = await self.call_service(
            services.consultant_set_queue_message,
            consultant_id=self.consultant.id,
            text=text,
        )
        await self.send_frame("queue_message_set", text=text, waiting=waiting)

    async def on_callback_done(self, callback):
        await self.call_service(
            services.callback_done,
            consultant_id=self.consultant.id,
            callback_id=callback,
        )

    async def on_flag(self, consultation, flag):
        await self.call_service(
            services.feedback_flag,
            consultant_id=self.consultant.id,
            consultation_id=consultation,
            flag=flag,
        )
        await self.send_frame("flag_noted", consultation=consultation, flag=flag)

    async def on_transfer_call(self, to, note):
        self.routes.forget()
        call = await self.call_service(
            services.consultation_transfer,
            consultant_id=self.consultant.id,
            channel=self.channel_name,
            to_slug=to,
            note=note,
        )
        self.routes.end(call)

    async def on_transfer(self, ticket, to, note):
        await self.call_service(
            services.ticket_transfer,
            consultant_id=self.consultant.id,
            ticket_id=ticket,
            to_slug=to,
            note=note,
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

    async def on_record_request(self):
        await self.call_service(
            services.recording_request,
            channel=self.channel_name,
            address=self.scope.get("client_address", ""),
        )

    async def on_refuse(self, ticket, reason):
        await self.call_service(
            services.ticket_refuse,
            consultant_id=self.consultant.id,
            ticket_id=ticket,
            reason=reason,
        )
