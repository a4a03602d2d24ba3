"""The message catalog of the browser modules (static/js/i18n.js)."""

from django.utils import translation
from django.views.decorators.http import require_safe
from django.views.i18n import JavaScriptCatalog

_catalog = JavaScriptCatalog.as_view()


@require_safe
def javascript_catalog(request):
    """Django's JavaScriptCatalog in the language of `?lang=` when it is one
    of settings.LANGUAGES (the page's own: an embedded frame names its
    language, no cookie), else in the request's language."""
    lang = request.GET.get("lang", "")[:20]
    try:
        lang = (
            translation.get_supported_language_variant(lang, strict=True)
            if lang
            else ""
        )
    except LookupError:
        lang = ""
    if not lang:
        return _catalog(request)
    with translation.override(lang):
        return _catalog(request)
