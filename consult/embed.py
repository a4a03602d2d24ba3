"""The allow-list of sites that may embed the consulting bot (docs/embed.md).

An origin is checked here in one shape, `scheme://host[:port]` exactly as a
browser sends it in `Origin`, so that the admin, the management command, the
`frame-ancestors` header and the host check all compare the same strings.
"""

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from .models import Consultant, EmbedSite

DEFAULT_PORTS = {"http": 80, "https": 443}
# One DNS label: letters, digits and inner hyphens (after IDNA encoding).
LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_ORIGIN = 200


def normalize_origin(value: str) -> str:
    """The origin `value` names, as a browser writes it; ValidationError if none.

    `HTTPS://Shop.Example.com:443/` becomes `https://shop.example.com`; a path,
    query, user name or any other scheme is refused with a message that says so.
    """
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError("Give an origin such as https://shop.example.com.")
    if len(text) > MAX_ORIGIN or any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise ValidationError("That is not an origin (too long, or spaces in it).")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not text.lower().startswith(f"{scheme}://"):
        raise ValidationError(
            "An origin starts with https:// (or http://), e.g. https://shop.example.com."
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError("An origin has no user name or password in it.")
    if (
        parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "?" in text
        or "#" in text
    ):
        raise ValidationError(
            "An origin is scheme, host and port only: no path, query or fragment "
            f"(try {scheme}://{parts.netloc})."
        )
    try:
        port = parts.port
    except ValueError:
        raise ValidationError("The port must be a number from 1 to 65535.") from None
    if port == 0:
        raise ValidationError("The port must be a number from 1 to 65535.")
    host = _host(parts.hostname or "")
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _host(name: str) -> str:
    if not name:
        raise ValidationError("The origin has no host name.")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else str(address)
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(f"{name!r} is not a valid host name.") from None
    labels = ascii_name.lower().split(".")
    if not all(LABEL.match(label) for label in labels):
        raise ValidationError(f"{name!r} is not a valid host name.")
    return ascii_name.lower()


def origin_or_none(value) -> str | None:
    """`normalize_origin(value)`, or None for anything that is not an origin."""
    try:
        return normalize_origin(value)
    except ValidationError:
        return None


def active_sites():
    return EmbedSite.objects.filter(is_active=True)


def allowed_origins() -> list[str]:
    """Every origin that may embed the bot now, sorted."""
    return sorted(active_sites().values_list("origin", flat=True))


def site_for_origin(value) -> EmbedSite | None:
    """The active site of this origin (any spelling of it), or None."""
    origin = origin_or_none(value)
    if origin is None:
        return None
    return active_sites().filter(origin=origin).first()


def offers(site: EmbedSite, consultant: Consultant) -> bool:
    """Whether `site` may offer `consultant`: no consultants named means all."""
    chosen = site.consultants.all()
    return not chosen.exists() or chosen.filter(pk=consultant.pk).exists()


def consultants_offered(site: EmbedSite | None) -> list[Consultant]:
    """Whom a site's picker lists: its consultants who take calls, by name.

    With no site (a frame whose host page did not say which it is), the
    consultants that some active site may offer.
    """
    serving = Consultant.objects.serving().order_by("name", "pk")
    sites = [site] if site is not None else list(active_sites())
    if not sites:
        return []
    if any(not s.consultants.exists() for s in sites):
        return list(serving)
    return list(serving.filter(embed_sites__in=sites).distinct())


def frame_ancestors(
    *, site: EmbedSite | None, host_given: bool, consultant: Consultant | None = None
) -> list[str]:
    """The origins that may frame an embedded page (empty: nobody may).

    A frame that names its host page's site is framable by that origin alone,
    so the header does not list every customer; a frame that names none (a
    hand-written iframe) by every active site that may offer `consultant`; a
    frame that names a site not on the list by nobody.
    """
    if site is not None:
        sites: Iterable[EmbedSite] = [site]
    elif host_given:
        return []
    else:
        sites = active_sites()
    if consultant is not None:
        sites = [s for s in sites if offers(s, consultant)]
    return sorted({s.origin for s in sites})


def snippet(app_url: str, consultant_slug: str = "") -> str:
    """The script tag a site pastes, for the app served at `app_url`."""
    attributes = f' data-consultant="{consultant_slug}"' if consultant_slug else ""
    return f'<script src="{app_url.rstrip("/")}/embed.js"{attributes} async></script>'
