"""The language a socket's human words (the `message` of `error`) are written in."""

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from django.conf import settings
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header


def socket_language(scope: dict) -> str:
    """A code of `settings.LANGUAGES` for this handshake's `scope`.

    In order: the `lang` of the query string (the page's own language, which
    an embedded frame sets without cookies), the language cookie that
    `set_language` keeps, the browser's `Accept-Language`, the default.
    """
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    # A malformed cookie header loads nothing (SimpleCookie skips what it cannot read).
    cookie = SimpleCookie(headers.get("cookie", "")).get(settings.LANGUAGE_COOKIE_NAME)
    wanted = [*query.get("lang", [])[:1], cookie.value if cookie else ""]
    # Django's own parser of the header, as LocaleMiddleware uses it.
    accepted = parse_accept_lang_header(headers.get("accept-language", ""))
    wanted += [code for code, _quality in accepted]
    for code in wanted:
        if not code or code == "*":
            continue
        try:
            return translation.get_supported_language_variant(code[:20])
        except LookupError:
            continue
    return settings.LANGUAGE_CODE
