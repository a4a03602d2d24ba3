"""Real rows for tests: users, consultants and queued callers."""

from django.contrib.auth import get_user_model

from consult import services
from consult.models import Consultant

PASSWORD = "a-test-password"
OFFER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVPF 111\r\n"
ANSWER = (
    "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVPF 111\r\n"
)


def make_consultant(slug: str, *, presence: str = "online", **fields) -> Consultant:
    user = get_user_model().objects.create_user(username=slug, password=PASSWORD)
    return Consultant.objects.create(
        user=user,
        slug=slug,
        name=fields.pop("name", slug.title()),
        presence=presence,
        **fields,
    )


def join(consultant: Consultant, channel: str, name: str = "Caller", **fields):
    """Queue a caller on `channel`: (ticket, queued payload)."""
    result = services.ticket_create(
        consultant_slug=consultant.slug,
        caller_name=name,
        reason=fields.get("reason", ""),
        audio_only=fields.get("audio_only", False),
        offer=fields.get("offer", OFFER),
        channel=channel,
        process="test",
        address=fields.get("address", ""),
        proof=fields.get("proof", ""),
    )
    return result.value.ticket, result.value.queued


def accept(consultant: Consultant, channel: str = "desk-1", ticket_id=None):
    return services.ticket_accept(
        consultant_id=consultant.id,
        channel=channel,
        process="test",
        ticket_id=ticket_id,
    )
