"""The client's address, behind a trusted proxy or not.

X-Forwarded-For is believed only when the socket's peer is a proxy named in
CONSULT_TRUSTED_PROXIES; then the client is the rightmost hop that is not a
trusted proxy. Hops further left were written by the client and prove nothing.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=16)
def networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def in_networks(address: str, entries) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks(tuple(entries)))


def client_address(peer: str, forwarded_for: str = "") -> str:
    """The client's address given the socket's peer and its X-Forwarded-For."""
    trusted = settings.CONSULT_TRUSTED_PROXIES
    if not trusted or not in_networks(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not in_networks(hop, trusted):
            return hop
    return hops[0] if hops else peer


def scope_address(scope) -> str:
    """The client's address of an ASGI connection (HTTP or WebSocket)."""
    peer = (scope.get("client") or ("",))[0] or ""
    forwarded = ""
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded = f"{forwarded},{value.decode('latin-1')}"
    return client_address(peer, forwarded)


def request_address(request) -> str:
    return client_address(
        request.META.get("REMOTE_ADDR", ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )
