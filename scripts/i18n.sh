#!/usr/bin/env bash
# The message catalogs (locale/<lang>/LC_MESSAGES/django.po and djangojs.po).
#
#   scripts/i18n.sh update     gather every marked string from the code into the
#                              catalogs (new ones come in untranslated; obsolete
#                              ones are dropped), then translate what `check` lists
#   scripts/i18n.sh check      fail if, after a fresh gathering, any entry of any
#                              catalog is untranslated or fuzzy; locale/ is left alone
#   scripts/i18n.sh compile    build the .mo files the app reads (not committed);
#                              only catalogs newer than their .mo are rebuilt
#   scripts/i18n.sh check-po FILE.po...   the check alone, on these files
#
# Needs GNU gettext (scripts/ensure-tools.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# Gathering and compiling read the settings, never a secret.
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-i18n-only}"
LANGS=(ko)
# Not the app's own text: the virtualenv, tests, tools, vendored code.
IGNORE=(--ignore=.venv --ignore=node_modules --ignore=tests --ignore=bench
        --ignore=staticfiles --ignore=static/vendor --ignore=deploy --ignore=docs)

gather() {
    local locale_args=()
    for lang in "${LANGS[@]}"; do locale_args+=(-l "$lang"); done
    # --add-location=file: no line numbers, so that moving code does not
    # change the catalogs (and merges of branches stay quiet).
    $PY manage.py makemessages "${locale_args[@]}" -d django "${IGNORE[@]}" \
        --add-location=file --no-wrap -v 0
    $PY manage.py makemessages "${locale_args[@]}" -d djangojs "${IGNORE[@]}" \
        --ignore=static/js/embed.js --ignore=static/js/embeddemo.js \
        --add-location=file --no-wrap -v 0
    # Strings gone from the code are dropped rather than kept as #~ entries.
    local po
    for po in "$(locale_dir)"/*/LC_MESSAGES/*.po; do
        msgattrib --no-obsolete --no-wrap -o "$po" "$po"
    done
}

locale_dir() {
    echo "${CONSULT_LOCALE_PATH:-locale}"
}

# Each file: valid (msgfmt --check: formats, plural forms, header), with no
# untranslated and no fuzzy entry. Lists what is wrong; fails if anything is.
check_po() {
    local failed=0 po bad
    for po in "$@"; do
        if ! msgfmt --check --statistics -o /dev/null "$po" 2>/tmp/i18n-msgfmt.$$; then
            echo "$po: not a valid catalog:" >&2
            cat /tmp/i18n-msgfmt.$$ >&2
            failed=1
        fi
        rm -f /tmp/i18n-msgfmt.$$
        # A fuzzy header is dropped by msgfmt, and with it the plural rule.
        if grep -B1 -m1 '^msgid ""$' "$po" | grep -q '^#, fuzzy'; then
            echo "$po: the header is fuzzy (delete its '#, fuzzy' line)" >&2
            failed=1
        fi
        bad=$(msgattrib --untranslated --no-obsolete --no-wrap "$po" | grep -c '^msgid "[^"]' || true)
        if [ "$bad" -gt 0 ]; then
            echo "$po: $bad untranslated:" >&2
            msgattrib --untranslated --no-obsolete --no-wrap "$po" | grep '^msgid "[^"]' >&2
            failed=1
        fi
        bad=$(msgattrib --only-fuzzy --no-obsolete --no-wrap "$po" | grep -c '^msgid "[^"]' || true)
        if [ "$bad" -gt 0 ]; then
            echo "$po: $bad fuzzy (check the translation, then delete the '#, fuzzy' line):" >&2
            msgattrib --only-fuzzy --no-obsolete --no-wrap "$po" | grep '^msgid "[^"]' >&2
            failed=1
        fi
    done
    return "$failed"
}

case "${1:-}" in
    update)
        gather
        check_po locale/*/LC_MESSAGES/*.po || echo "== translate the entries above in locale/, then run: $0 check" >&2
        ;;
    check)
        scratch=$(mktemp -d /tmp/i18n-check.XXXXXX)
        trap 'rm -rf "$scratch"' EXIT
        cp -r locale/. "$scratch/"
        CONSULT_LOCALE_PATH="$scratch" gather
        check_po "$scratch"/*/LC_MESSAGES/*.po
        echo "catalogs complete: ${LANGS[*]}"
        ;;
    check-po)
        shift
        check_po "$@"
        ;;
    compile)
        $PY manage.py compilemessages --ignore=.venv --ignore=node_modules -v 0
        ;;
    *)
        sed -n '2,12p' "$0" >&2
        exit 2
        ;;
esac
