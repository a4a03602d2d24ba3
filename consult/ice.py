"""The ICE servers handed to browsers in `hello`: STUN, and TURN with fresh credentials.

TURN credentials follow coturn's REST scheme (`use-auth-secret`): the username
is "<expiry unix time>:<opaque id>" and the password is
base64(HMAC-SHA1(secret, username)). coturn recomputes the HMAC with the same
secret and refuses the username once its time has passed, so nothing is stored
and a leaked credential dies on its own.
"""

import base64
import hashlib
import hmac
import secrets
import time

from django.conf import settings


def turn_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def turn_username(expires_at: int) -> str:
    # The opaque part is random, not the caller's identity: the relay learns
    # nothing about who is calling.
    return f"{expires_at}:{secrets.token_urlsafe(9)}"


def ice_servers(*, now: float | None = None) -> list[dict]:
    """RTCIceServer objects for a new socket: STUN, plus TURN when configured."""
    servers = []
    if settings.CONSULT_STUN_URLS:
        servers.append({"urls": list(settings.CONSULT_STUN_URLS)})
    if settings.CONSULT_TURN_URLS and settings.CONSULT_TURN_SECRET:
        now = time.time() if now is None else now
        username = turn_username(
            int(now) + settings.CONSULT_TURN_CREDENTIAL_TTL_SECONDS
        )
        servers.append(
            {
                "urls": list(settings.CONSULT_TURN_URLS),
                "username": username,
                "credential": turn_credential(settings.CONSULT_TURN_SECRET, username),
            }
        )
    return servers
