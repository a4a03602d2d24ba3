""" "Your turn is near" by e-mail: sent once, when a waiting caller reaches the
place they chose, with a link that brings them back to their seat."""

import hashlib
import logging
import secrets
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from consult import errors
from consult.events import Result
from consult.models import Ticket
from consult.selectors import ticket_position

from .shared import WAITING, caller_ticket, token_hash

log = logging.getLogger(__name__)

# The signed link in the e-mail names the ticket; it is good for this long,
# and once.
RETURN_LINK_SALT = "consult.return-to-seat"
RETURN_LINK_SECONDS = 3600
# An address the caller typed is not confirmed: so that nobody can use the
# queue to mail others, an address gets at most one e-mail in this time, and
# the e-mail holds no text the caller wrote.
PER_RECIPIENT_SECONDS = 24 * 3600


def ticket_notify(
    *, channel: str, email: str, place: int, language: str = settings.LANGUAGE_CODE
) -> Result[None]:
    """E-mail `email` once when this socket's waiting ticket is at `place`
    (1 = next) or nearer. Setting it again replaces the address and the place
    until the e-mail is sent; after that, `AlreadyNotified` (one e-mail per
    ticket, whatever the caller asks). Raises `NotQueued` if the ticket is not
    waiting. `email` is checked by the caller (signaling.messages); the e-mail
    is written in `language` (a code of settings.LANGUAGES)."""
    with transaction.atomic():
        ticket = caller_ticket(channel, lock=True)
        if ticket.state != WAITING:
            raise errors.NotQueued
        if ticket.notified_at is not None:
            raise errors.AlreadyNotified
        Ticket.objects.filter(pk=ticket.pk).update(
            notify_email=email, notify_place=place, language=language
        )
    return Result(None, [])


def notify_due():
    """Waiting tickets with an e-mail still to send (their place is checked
    under lock by `notify_send`)."""
    return Ticket.objects.filter(
        state=WAITING, notified_at__isnull=True, notify_place__isnull=False
    ).exclude(notify_email="")


def notify_send(pk, now: datetime) -> list:
    """Send one ticket's e-mail if its caller has reached their place: marked
    sent in the same transaction, mailed once it commits, so that no two
    processes send it and a rolled-back mark sends nothing."""
    ticket = (
        notify_due()
        .select_for_update(skip_locked=True)
        .select_related("consultant")
        .filter(pk=pk)
        .first()
    )
    if ticket is None:
        return []
    position, _ = ticket_position(ticket)
    if position > ticket.notify_place:
        return []
    Ticket.objects.filter(pk=pk).update(notified_at=now)
    recipient = hashlib.sha256(ticket.notify_email.lower().encode()).hexdigest()
    if not cache.add(f"notify-to:{recipient}", 1, PER_RECIPIENT_SECONDS):
        log.info("turn-near e-mail skipped: that address had one lately")
        return []
    link = settings.CONSULT_PUBLIC_URL.rstrip("/") + reverse(
        "return_to_seat",
        args=[
            ticket.consultant.slug,
            signing.dumps(str(ticket.pk), salt=RETURN_LINK_SALT),
        ],
    )
    with translation.override(ticket.language or settings.LANGUAGE_CODE):
        subject, body = _turn_near_text(position, ticket.consultant.name, link)
    address = ticket.notify_email
    transaction.on_commit(lambda: _mail(subject, body, address))
    return []


def _turn_near_text(position: int, name: str, link: str) -> tuple[str, str]:
    """The e-mail's subject and body, in the active language."""
    words = {"name": name, "position": position, "link": link}
    if position == 1:
        subject = gettext("You are next in line for %(name)s") % words
        lead = gettext("You are next in line for %(name)s.") % words
    else:
        subject = gettext("You are number %(position)s in line for %(name)s") % words
        lead = gettext("You are number %(position)s in line for %(name)s.") % words
    body = gettext(
        "Hello,\n\n%(lead)s Keep your consultation page open, or go back to it "
        "here:\n\n%(link)s\n\nThe link works for an hour, while you are still in "
        "the queue."
    ) % {**words, "lead": lead}
    return subject, body


def _mail(subject: str, body: str, address: str) -> None:
    try:
        send_mail(subject, body, None, [address])
    except Exception:
        # The caller still hears the chime on the page; a mail server that
        # is down must not stop the repair pass.
        log.exception("turn-near e-mail could not be sent")


def seat_from_link(signed: str) -> Ticket:
    """The waiting ticket a return link names; `BadToken` when the link is
    forged, older than `RETURN_LINK_SECONDS`, or its ticket no longer waits."""
    try:
        pk = signing.loads(signed, salt=RETURN_LINK_SALT, max_age=RETURN_LINK_SECONDS)
    except signing.BadSignature as error:
        raise errors.BadToken from error
    ticket = Ticket.objects.filter(pk=pk, state=WAITING).first()
    if ticket is None:
        raise errors.BadToken
    return ticket


@transaction.atomic
def seat_return(*, signed: str) -> Result[tuple[str, str]]:
    """Give the caller of a return link a fresh resume token for their seat:
    `(consultant slug, token)`. The old token stops working, so a link cannot
    be used to hold a seat from two places, and the link works once. Raises
    `BadToken` as `seat_from_link` does, or when the link was used."""
    ticket = seat_from_link(signed)
    used = hashlib.sha256(signed.encode()).hexdigest()
    if not cache.add(f"seat-link-used:{used}", 1, RETURN_LINK_SECONDS):
        raise errors.BadToken
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("consultant")
        .get(pk=ticket.pk)
    )
    token = secrets.token_urlsafe(32)
    Ticket.objects.filter(pk=ticket.pk).update(token_hash=token_hash(token))
    return Result((ticket.consultant.slug, token), [])
