"""Callbacks: a caller who would rather be called back than wait in the queue."""

from django.conf import settings
from django.db import transaction

from consult import errors
from consult.events import QueueChanged, Result
from consult.models import Callback

from .shared import serving_consultant


@transaction.atomic
def callback_request(
    *,
    consultant_slug: str,
    caller_name: str,
    contact: str,
    reason: str,
    address: str = "",
) -> Result[None]:
    """Leave a name and a way to be reached for the consultant's next free moment.

    `contact` is free text (a phone number or an e-mail address), checked for
    length and characters by the caller (signaling.messages). The consultant
    may be offline: that is when a callback helps most. Raises
    `UnknownConsultant`; `QueueFull` when the consultant already has
    `max_queue` callbacks open; `TooManyFromAddress` beyond
    `CONSULT_MAX_WAITING_PER_ADDRESS` open callbacks from one address.
    """
    consultant = serving_consultant(consultant_slug)
    if consultant is None:
        raise errors.UnknownConsultant
    if address:
        from_address = Callback.objects.filter(caller_address=address).count()
        if from_address >= settings.CONSULT_MAX_WAITING_PER_ADDRESS:
            raise errors.TooManyFromAddress
    if consultant.callbacks.count() >= consultant.max_queue:
        raise errors.QueueFull
    Callback.objects.create(
        consultant=consultant,
        caller_name=caller_name,
        contact=contact,
        reason=reason,
        caller_address=address,
    )
    return Result(None, [QueueChanged(consultant.id, moved=False)])


def callback_done(*, consultant_id: int, callback_id: int) -> Result[None]:
    """The consultant has called back (or given up): the request is deleted,
    with the personal data in it. Raises `CallbackGone` if it is not one of
    this consultant's open callbacks."""
    deleted, _ = Callback.objects.filter(
        pk=callback_id, consultant_id=consultant_id
    ).delete()
    if not deleted:
        raise errors.CallbackGone
    return Result(None, [QueueChanged(consultant_id, moved=False)])
