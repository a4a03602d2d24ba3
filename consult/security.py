"""Response headers that limit what a page may do: CSP and Permissions-Policy.

Scripts load only from our own origin (no inline script, no eval), so an
injected `<script>` or `onerror=` does nothing; pages talk only to our own
origin and its WebSocket. No page may be framed, except the embedded pages
(`/embed/…`), whose view names the sites that may frame them in
`response.frame_ancestors` (consult/embed.py). Django 5.2 has no CSP support
of its own.
"""

from collections.abc import Sequence

from django.core.exceptions import DisallowedHost
from django.utils.deprecation import MiddlewareMixin

POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
)
# Camera and microphone for our own pages only; nothing else.
PERMISSIONS = "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()"


def content_security_policy(request, frame_ancestors: Sequence[str] = ()) -> str:
    """The policy of a page; `frame_ancestors`: the origins that may frame it."""
    ancestors = "frame-ancestors " + (" ".join(frame_ancestors) or "'none'")
    connect = "connect-src 'self'"
    try:
        host = request.get_host()
    except DisallowedHost:
        host = ""
    if host:
        # 'self' covers ws(s) in current browsers; the explicit origin is for
        # those that predate CSP 3.
        connect += f" {'wss' if request.is_secure() else 'ws'}://{host}"
    return "; ".join((*POLICY, ancestors, connect))


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    def process_response(self, request, response):
        response.headers.setdefault(
            "Content-Security-Policy",
            content_security_policy(request, getattr(response, "frame_ancestors", ())),
        )
        response.headers.setdefault("Permissions-Policy", PERMISSIONS)
        return response
