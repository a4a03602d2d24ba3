"""The embedded consulting bot: its script, its allow-list check and its pages.

`/embed.js` goes on other sites' pages; `/embed/` (the picker) and
`/embed/call/<slug>/` (the call page in an embedded layout) are what it frames,
framable only by the allowed sites (docs/embed.md).
"""

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from . import embed
from .models import Consultant
from .selectors import consultant_status, consultants_with_live_state

SCRIPT = "js/embed.js"
# The unversioned name is what sites paste: short-cached, so a release reaches
# them within minutes; the versioned one never changes.
SHORT_CACHE = "public, max-age=300"
LONG_CACHE = "public, max-age=31536000, immutable"
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})?$", re.IGNORECASE)


@lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> tuple[bytes, str]:
    body = Path(path).read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:12]


def script_and_version() -> tuple[bytes, str]:
    """embed.js's bytes and version (a hash of them), re-read when the file changes."""
    path = finders.find(SCRIPT) or staticfiles_storage.path(SCRIPT)
    return _read(path, Path(path).stat().st_mtime)


def _javascript(body: bytes | str, cache: str, etag: str | None = None):
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = cache
    # Any page may load it, also with crossorigin= and integrity=.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    if etag:
        response["ETag"] = etag
    return response


@require_safe
def script(request):
    """The snippet's script, short-cached and revalidated by its version."""
    body, version = script_and_version()
    etag = f'"{version}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = _javascript(b"", SHORT_CACHE, etag)
        response.status_code = 304
        return response
    return _javascript(body, SHORT_CACHE, etag)


@require_safe
def versioned_script(request, version):
    """The script under its version's name, cached for good; an old version's
    name leads to the current script."""
    body, current = script_and_version()
    if version != current:
        response = HttpResponseRedirect(reverse("embed-script"))
        response["Cache-Control"] = SHORT_CACHE
        return response
    return _javascript(body, LONG_CACHE, f'"{current}"')


@require_safe
def site_check(request):
    """Whether the page asking (its `Origin`, set by the browser) may embed the bot.

    embed.js loads this as a script with `crossorigin`, so it needs nothing in
    the host page's CSP beyond `script-src` for the app; it tells embed.js by an
    event on its own script element.
    """
    allowed = embed.site_for_origin(request.headers.get("Origin")) is not None
    detail = json.dumps({"allowed": allowed})
    with translation.override(_language(request) or translation.get_language()):
        words = json.dumps(_widget_words(), ensure_ascii=True)
    # The widget's own words first (`consult:words`), in its `lang` or the
    # browser's language, then the answer it waits for.
    body = (
        "(function(s){if(!s)return;"
        f"s.dispatchEvent(new CustomEvent('consult:words',{{detail:{words}}}));"
        "s.dispatchEvent(new CustomEvent('consult:site',"
        f"{{detail:{detail}}}))}})(document.currentScript);\n"
    )
    response = _javascript(body, "public, max-age=60")
    response["Vary"] = "Origin, Accept-Language"
    return response


def _widget_words() -> dict[str, str]:
    """What embed.js itself says on the host page, in the active language."""
    return {
        "label": str(_("Talk to a consultant")),
        "close": str(_("Close")),
        "stay": str(_("Stay")),
        "leave": str(_("Close anyway")),
        "queued": str(_("You are in the queue: reopen this soon to keep your place.")),
        "inCall": str(_("You are in a call: reopen this soon to go on with it.")),
    }


def _embed_context(request) -> tuple[object, bool, dict]:
    """The site the frame's `host` names, whether it named one, and the query
    (host and language) that the frame's links carry on."""
    host = request.GET.get("host", "")
    site = embed.site_for_origin(host)
    carry = {}
    if site is not None:
        carry["host"] = site.origin
    lang = _language(request)
    if lang:
        carry["lang"] = lang
    return site, bool(host), carry


def _language(request) -> str:
    lang = request.GET.get("lang", "")
    if LANGUAGE.match(lang) and translation.check_for_language(lang):
        return lang
    return ""


def _framable(response, origins: list[str]):
    """Let these origins (and no others) frame the page."""
    response.frame_ancestors = origins
    # X-Frame-Options has no allow-list; frame-ancestors takes its place here.
    response.xframe_options_exempt = bool(origins)
    response["Cache-Control"] = "no-store"
    return response


def _render(request, template: str, context: dict):
    # Without a `lang` of its own, the frame speaks as the browser asks.
    lang = _language(request) or translation.get_language()
    with translation.override(lang):
        return render(request, template, {**context, "lang": lang})


@require_safe
def picker(request, notice: str = ""):
    """The consultants this site may offer, each a link to its embedded call page."""
    site, host_given, carry = _embed_context(request)
    query = f"?{urlencode(carry)}" if carry else ""
    offered = [] if host_given and site is None else embed.consultants_offered(site)
    rows = consultants_with_live_state(
        Consultant.objects.filter(pk__in=[c.pk for c in offered])
    )
    consultants = [
        {
            "slug": c.slug,
            "name": c.name,
            "title": c.title,
            "status": consultant_status(presence=c.presence, in_call=c.in_call),
            "queue_length": c.queue_length,
        }
        for c in rows
    ]
    response = _render(
        request,
        "embed/picker.html",
        {
            "consultants": consultants,
            "query": query,
            "notice": notice,
            "embed_host": site.origin if site else "",
        },
    )
    return _framable(response, embed.frame_ancestors(site=site, host_given=host_given))


@require_safe
def call(request, slug):
    """The call page in the embedded layout; the picker for a consultant that
    is unknown or that this site may not offer.

    `follow=1` marks a caller the business itself sent on (a move after a
    refusal, a transfer): they follow inside the frame to any consultant who
    takes calls. The site's list says whom it offers, not where the business
    may hand its callers (docs/embed.md).
    """
    site, host_given, _carry = _embed_context(request)
    consultant = Consultant.objects.serving().filter(slug=slug[:50]).first()
    following = request.GET.get("follow") == "1"
    if consultant is None or (
        site is not None and not following and not embed.offers(site, consultant)
    ):
        return picker(request, notice=_("That consultant cannot be reached here."))
    response = _render(
        request,
        "embed/call.html",
        {"consultant": consultant, "embed_host": site.origin if site else ""},
    )
    origins = embed.frame_ancestors(
        site=site, host_given=host_given, consultant=None if following else consultant
    )
    return _framable(response, origins)


@require_safe
def demo(request):
    """A sample shop page with the snippet (DEBUG only): open it as
    http://localhost:PORT/embed/demo/ while the app is http://127.0.0.1:PORT, so
    that the two are different sites, as a real shop and the app would be."""
    if not settings.DEBUG:
        raise Http404("The demo host page is served with DEBUG on only.")
    name, _, port = request.get_host().partition(":")
    port = port or request.get_port()
    if name != "localhost":
        return HttpResponseRedirect(f"http://localhost:{port}{request.path}")
    app = f"http://127.0.0.1:{port}"
    response = render(
        request,
        "embed/demo.html",
        {"app": app, "origin": f"http://localhost:{port}"},
    )
    response["Content-Security-Policy"] = demo_host_policy(app)
    response["Permissions-Policy"] = demo_host_permissions(app)
    return response


def demo_host_policy(app: str) -> str:
    """What docs/embed.md tells a host page with a CSP to allow."""
    return (
        f"default-src 'self'; script-src 'self' {app}; frame-src {app}; "
        "style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"
    )


def demo_host_permissions(app: str) -> str:
    return ", ".join(
        f'{feature}=(self "{app}")'
        for feature in ("camera", "microphone", "display-capture", "autoplay")
    )
