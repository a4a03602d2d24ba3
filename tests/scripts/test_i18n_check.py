"""The catalog check (scripts/i18n.sh check-po) fails on an untranslated, a
fuzzy or a broken entry, and passes a complete catalog."""

import subprocess

import pytest

from tests.live import ROOT

HEADER = """msgid ""
msgstr ""
"Language: ko\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Content-Transfer-Encoding: 8bit\\n"
"Plural-Forms: nplurals=1; plural=0;\\n"
"""

COMPLETE = """
msgid "Hang up"
msgstr "통화 종료"

#, python-format
msgid "%(count)s waiting"
msgid_plural "%(count)s waiting"
msgstr[0] "%(count)s명 대기"
"""


def check(tmp_path, text: str) -> subprocess.CompletedProcess:
    po = tmp_path / "django.po"
    po.write_text(text, encoding="utf-8")
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "i18n.sh"), "check-po", str(po)],
        capture_output=True,
        text=True,
    )


def test_a_complete_catalog_passes(tmp_path):
    result = check(tmp_path, HEADER + COMPLETE)
    assert result.returncode == 0, result.stderr


def test_an_untranslated_entry_fails_and_is_named(tmp_path):
    result = check(tmp_path, HEADER + COMPLETE + '\nmsgid "Mute"\nmsgstr ""\n')
    assert result.returncode != 0
    assert "1 untranslated" in result.stderr
    assert 'msgid "Mute"' in result.stderr


def test_an_untranslated_plural_fails(tmp_path):
    plural = '\nmsgid "%s second"\nmsgid_plural "%s seconds"\nmsgstr[0] ""\n'
    result = check(tmp_path, HEADER + COMPLETE + plural)
    assert result.returncode != 0
    assert "untranslated" in result.stderr


def test_a_fuzzy_entry_fails_and_is_named(tmp_path):
    fuzzy = '\n#, fuzzy\nmsgid "Mute"\nmsgstr "음소거 해제"\n'
    result = check(tmp_path, HEADER + COMPLETE + fuzzy)
    assert result.returncode != 0
    assert "1 fuzzy" in result.stderr
    assert 'msgid "Mute"' in result.stderr


def test_a_fuzzy_header_fails(tmp_path):
    result = check(tmp_path, "#, fuzzy\n" + HEADER + COMPLETE)
    assert result.returncode != 0
    assert "header is fuzzy" in result.stderr


@pytest.mark.parametrize(
    "entry",
    [
        # A placeholder of the source missing from the translation.
        '\n#, python-format\nmsgid "%(name)s ended the call."\nmsgstr "통화 종료"\n',
    ],
)
def test_a_translation_that_breaks_its_format_fails(tmp_path, entry):
    result = check(tmp_path, HEADER + COMPLETE + entry)
    assert result.returncode != 0
    assert "not a valid catalog" in result.stderr


def test_the_repository_catalogs_are_complete():
    """What `make test` runs: a fresh gathering of the code's strings, checked."""
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "i18n.sh"), "check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
