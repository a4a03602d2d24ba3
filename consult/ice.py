"""The ICE servers handed to browsers in `hello`."""

from django.conf import settings


def ice_servers() -> list[dict]:
    """RTCIceServer objects for a new socket: STUN from the settings."""
    if not settings.CONSULT_STUN_URLS:
        return []
    return [{"urls": list(settings.CONSULT_STUN_URLS)}]
