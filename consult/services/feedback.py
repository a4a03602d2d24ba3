"""After a call: the caller's rating and comment, the consultant's flag.

Each is written once per consultation, only once it has ended, and only by
its own party: the caller's socket proves itself by having held the call
(the consumer checks that), the consultant by owning the consultation.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consult import errors
from consult.events import Result
from consult.models import CallFeedback, Consultation

from .shared import ACTIVE

COMMENT_MAX = 500


def _ended_call(consultation_id: int, **owned) -> Consultation:
    call = Consultation.objects.filter(pk=consultation_id, **owned).first()
    if call is None:
        raise errors.FeedbackRefused(_("There is no such call of yours."))
    if call.outcome == ACTIVE:
        raise errors.FeedbackRefused(_("The call has not ended yet."))
    return call


@transaction.atomic
def feedback_rate(*, consultation_id: int, rating: int, comment: str) -> Result[None]:
    """The caller rates an ended consultation 1-5, with an optional comment of
    at most `COMMENT_MAX` characters (shown as text, never HTML). The caller's
    right to it is the consumer's to check. `FeedbackRefused` if it is not
    ended, unknown, or already rated; `ValueError` for a rating out of 1-5."""
    if not 1 <= rating <= 5:
        raise ValueError(rating)
    _ended_call(consultation_id)
    CallFeedback.objects.get_or_create(consultation_id=consultation_id)
    rated = CallFeedback.objects.filter(
        consultation_id=consultation_id, rating__isnull=True
    ).update(rating=rating, comment=comment[:COMMENT_MAX], rated_at=timezone.now())
    if not rated:
        raise errors.FeedbackRefused(_("This call was rated already."))
    return Result()


@transaction.atomic
def feedback_flag(
    *, consultant_id: int, consultation_id: int, flag: str
) -> Result[None]:
    """The consultant flags one of their ended consultations (audio, video,
    dropped, other); a later flag replaces the first. `FeedbackRefused` if the
    consultation is not theirs or not ended; `ValueError` for another flag."""
    if flag not in CallFeedback.Flag.values:
        raise ValueError(flag)
    _ended_call(consultation_id, consultant_id=consultant_id)
    CallFeedback.objects.update_or_create(
        consultation_id=consultation_id,
        defaults={"flag": flag, "flagged_at": timezone.now()},
    )
    return Result()
