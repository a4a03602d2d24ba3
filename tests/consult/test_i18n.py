"""Pages in the visitor's language (Accept-Language, then the switch's cookie),
a language switch on every page, the embedded frame's own `lang`, the catalog
of the modules, the viewer's time zone and the turn-near e-mail in Korean."""

import json
import re
import uuid
import zoneinfo

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone, translation
from django.utils.formats import date_format

from consult import services
from consult.timezones import viewer_zone
from tests.factories import PASSWORD, join

KO = {"HTTP_ACCEPT_LANGUAGE": "ko-KR,ko;q=0.9,en;q=0.5"}
SWITCH = 'data-testid="language-switch"'


def pages(consultant) -> list[str]:
    return ["/", f"/call/{consultant.slug}/", "/accounts/login/", "/embed/"]


def test_pages_follow_accept_language_with_lang_and_dir(client, consultant):
    for path in pages(consultant):
        korean = client.get(path, **KO).content.decode()
        assert '<html lang="ko" dir="ltr">' in korean, path
        assert SWITCH in korean, path
    lobby = client.get("/", **KO).content.decode()
    assert "상담사와 이야기하기" in lobby
    assert "Talk to a consultant" not in lobby
    # A count with its Korean counter, and the status in words.
    assert "0명 대기" in lobby and "온라인" in lobby
    english = client.get("/").content.decode()
    assert '<html lang="en" dir="ltr">' in english
    assert "Talk to a consultant" in english and "0 waiting" in english


def test_the_switch_posts_to_set_language_and_the_cookie_is_remembered(
    client, consultant
):
    page = client.get("/call/ada/").content.decode()
    form = re.search(r"<form[^>]*" + SWITCH + r"[^>]*>", page).group(0)
    assert 'method="post"' in form and 'action="/i18n/setlang/"' in form
    assert '<option value="ko" lang="ko">한국어</option>' in page

    response = client.post("/i18n/setlang/", {"language": "ko", "next": "/call/ada/"})
    assert response.status_code == 302 and response["Location"] == "/call/ada/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ko"
    # Remembered over the browser's own choice.
    page = client.get("/call/ada/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="ko"' in page and "대기열에 참여" in page


def test_a_switch_to_an_unknown_language_changes_nothing(client, consultant):
    client.post("/i18n/setlang/", {"language": "xx", "next": "/"})
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    assert '<html lang="en"' in client.get("/").content.decode()


def test_the_embedded_frame_speaks_its_lang_attribute_and_switches_by_get(
    client, consultant
):
    page = client.get("/embed/call/ada/?lang=ko", HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert '<html lang="ko"' in text and "대기열에 참여" in text
    # Its catalog is the frame's language, not the cookie's or the header's.
    assert "/jsi18n/?lang=ko" in text
    # No cookie in a frame: the switch is a GET form carrying `lang`.
    form = re.search(r"<form[^>]*" + SWITCH + r"[^>]*>", text).group(0)
    assert 'method="get"' in form
    assert 'name="lang"' in text
    # Without `lang`, the browser's language.
    assert '<html lang="ko"' in client.get("/embed/call/ada/", **KO).content.decode()


def test_the_modules_catalog_is_the_language_asked_for(client):
    # The catalog writes non-ASCII text as JSON escapes.
    left = json.dumps("대기열에서 나왔습니다.")
    korean = client.get("/jsi18n/?lang=ko", HTTP_ACCEPT_LANGUAGE="en")
    assert korean.status_code == 200
    assert left in korean.content.decode()
    # An unknown `lang` falls back to the request's language, not an error.
    english = client.get("/jsi18n/?lang=../../etc").content.decode()
    assert left not in english


def test_the_admin_speaks_korean_with_its_switch_and_our_labels(client, consultant):
    admin = get_user_model().objects.create_superuser(
        "boss", "boss@example.com", PASSWORD
    )
    client.force_login(admin)
    text = client.get("/admin/consult/consultation/", **KO).content.decode()
    assert '<html lang="ko"' in text and SWITCH in text
    assert "상담 기록" in text  # the model's plural name
    assert "요청 시각" in text  # a column's verbose name
    text = client.get("/admin/consult/consultant/", **KO).content.decode()
    assert "온라인" in text  # the live status in words


@pytest.mark.parametrize("name", ["", "Mars/Base", "../../etc/passwd", "x" * 80])
def test_an_unknown_time_zone_is_no_zone(name):
    assert viewer_zone(name) is None


def test_dates_are_shown_in_the_viewers_time_zone(client, consultant):
    admin = get_user_model().objects.create_superuser(
        "boss", "boss@example.com", PASSWORD
    )
    client.force_login(admin)
    join(consultant, "c1", name="Zoe")
    created = consultant.tickets.get().created_at
    with translation.override("en"):
        shown = {
            zone: date_format(timezone.localtime(created, zoneinfo.ZoneInfo(zone)), "P")
            for zone in ("Asia/Seoul", "UTC")
        }
    text = client.get("/admin/consult/ticket/").content.decode()
    assert shown["UTC"] in text and shown["Asia/Seoul"] not in text
    client.cookies["consult_tz"] = "Asia/Seoul"
    text = client.get("/admin/consult/ticket/").content.decode()
    assert shown["Asia/Seoul"] in text and shown["UTC"] not in text


def test_the_turn_near_email_is_in_the_callers_language(
    consultant, django_capture_on_commit_callbacks
):
    join(consultant, "c1", name="First")
    address = f"ko-{uuid.uuid4().hex}@example.com"
    services.ticket_notify(channel="c1", email=address, place=1, language="ko")
    with django_capture_on_commit_callbacks(execute=True):
        services.sweep()
    [message] = mail.outbox
    assert message.subject == "Ada 님 상담의 다음 차례입니다"
    assert message.body.startswith("안녕하세요.")
    assert "/call/ada/back/" in message.body


def test_the_widgets_own_words_come_in_its_language(client, db):
    """embed.js on the host page hears its words with the site check."""
    korean = client.get("/embed/site.js?lang=ko", HTTP_ORIGIN="https://x.example")
    text = korean.content.decode()
    assert "consult:words" in text and json.dumps("그래도 닫기") in text
    # Still the answer the widget waits for, after its words.
    assert text.index("consult:words") < text.index('{"allowed": false}')
    english = client.get("/embed/site.js", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '"leave": "Close anyway"' in english
    assert "Accept-Language" in korean["Vary"]
