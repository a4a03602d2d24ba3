"""The origin check at the WebSocket handshake: scheme, host and port, exactly.

A browser sends the page's origin with every handshake; a page of another
origin (another port of the same host included) must not drive a consultant's
desk with the consultant's session cookie. A handshake is accepted when its
Origin is the origin the socket itself is opened on (the scheme, the Host
header's name, which ALLOWED_HOSTS must allow, and its port), or one of
CONSULT_ALLOWED_ORIGINS; anything else is refused with HTTP 403.
"""

from functools import lru_cache
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}
SECURE_SCHEMES = {"https", "wss"}

Origin = tuple[str, str, int]  # scheme, host name (lower case, no brackets), port


def parse_origin(text: str) -> Origin | None:
    """`https://example.com:8443` as (scheme, host, port); None if not an origin."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if (
        scheme not in DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


@lru_cache(maxsize=4)
def configured(origins: tuple[str, ...]) -> frozenset[Origin]:
    parsed = {origin: parse_origin(origin) for origin in origins}
    bad = [origin for origin, value in parsed.items() if value is None]
    if bad:
        raise ImproperlyConfigured(
            f"CONSULT_ALLOWED_ORIGINS: not an origin (scheme://host[:port]): {bad}"
        )
    return frozenset(parsed.values())


def _allowed_hosts() -> list[str]:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # as Django's HttpRequest.get_host
    return hosts


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _secure(scope) -> bool:
    if scope.get("scheme") in SECURE_SCHEMES:
        return True
    # Behind the TLS proxy, as Django decides request.is_secure().
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        name, value = proxy_header
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        sent = _header(scope, header)
        return sent is not None and sent.split(",")[0].strip() == value
    return False


def served_origin(scope, origin: Origin) -> Origin | None:
    """The origin this handshake is made on; None if its host is not ours."""
    scheme = "https" if _secure(scope) else "http"
    host = _header(scope, b"host")
    if host is None:
        # Browsers always send Host: a client without one is no page that an
        # origin check could protect. Take the origin's host, the default port.
        domain, port = origin[1], ""
    else:
        domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    try:
        number = int(port) if port else DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, domain.strip("[]"), number


def origin_allowed(scope) -> bool:
    sent = _header(scope, b"origin")
    origin = parse_origin(sent) if sent else None
    if origin is None:
        return False
    if origin in configured(tuple(settings.CONSULT_ALLOWED_ORIGINS)):
        return True
    return origin == served_origin(scope, origin)


class OriginCheck:
    """ASGI middleware for sockets: a handshake from another origin gets HTTP 403."""

    def __init__(self, app):
        self.app = app
        configured(tuple(settings.CONSULT_ALLOWED_ORIGINS))  # refuse bad settings now

    # A plain function that hands back the inner application's coroutine: no
    # coroutine of its own stays suspended for a socket's life (0.4 kB each).
    _asgi_single_callable = True

    def __call__(self, scope, receive, send):
        if origin_allowed(scope):
            return self.app(scope, receive, send)
        return WebsocketDenier()(scope, receive, send)
