// Translation for the ES modules. The page loads Django's JavaScriptCatalog
// (/jsi18n/) as a classic script before any module runs, so the catalog is a
// global by then; without it (a page that forgot it) the text stays English.
const catalog = globalThis.django ?? {};

/** The message in the page's language: gettext("Waiting"). */
export function gettext(message) {
  return catalog.gettext ? catalog.gettext(message) : message;
}

/** The singular or plural form for `count`, in the page's language's rule. */
export function ngettext(singular, plural, count) {
  if (catalog.ngettext) return catalog.ngettext(singular, plural, count);
  return count === 1 ? singular : plural;
}

/** Fill `%(name)s` from an object: interpolate(gettext("%(n)s waiting"), { n: 3 }). */
export function interpolate(format, values) {
  return format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name]));
}

/** The message in `context` (a word that reads differently elsewhere): pgettext("presence", "away"). */
export function pgettext(context, message) {
  return catalog.pgettext ? catalog.pgettext(context, message) : message;
}
