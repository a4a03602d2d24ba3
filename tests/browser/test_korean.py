"""A browser asking for Korean (ko-KR) gets every page in Korean: no English
sentence of our catalogs is left on the lobby, the call page through a call,
the desk and the admin (visible text, labels, placeholders)."""

import re
from itertools import count

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import off_the_loop
from tests.browser.pages import expect_state, queue_items
from tests.factories import PASSWORD
from tests.live import ROOT

pytestmark = pytest.mark.browser

CATALOGS = [
    ROOT / "locale" / "ko" / "LC_MESSAGES" / f"{d}.po" for d in ("django", "djangojs")
]
# What a person reads: visible text, and the names and hints of controls.
READABLE = """
() => {
  const named = [...document.querySelectorAll("[aria-label], [placeholder], [title]")];
  const attributes = ["aria-label", "placeholder", "title"];
  return [
    document.title,
    document.body.innerText,
    ...named
      .filter((e) => e.checkVisibility())
      .flatMap((e) => attributes.map((name) => e.getAttribute(name))),
  ].filter(Boolean).join("\\n");
}
"""
_admins = count(1)


def english_sentences() -> set[str]:
    """The source text of every catalog entry of two words or more, its
    placeholders and markup taken out: the longest literal part of each."""
    found = set()
    for catalog in CATALOGS:
        text = catalog.read_text(encoding="utf-8")
        for msgid in re.findall(r'^msgid(?:_plural)? "(.+)"$', text, re.M):
            msgid = msgid.replace('\\"', '"')
            parts = re.split(r"%\(\w+\)[sd]|<[^>]+>|&\w+;", msgid)
            longest = max(parts, key=len).strip(" .,:;()…")
            if len(longest.split()) >= 2:
                found.add(longest)
    return found


ENGLISH = english_sentences()


def assert_korean(page: Page, where: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    readable = page.evaluate(READABLE)
    assert re.search(r"[\uac00-\ud7a3]", readable), f"{where}: no Korean at all"
    left = sorted(s for s in ENGLISH if s in readable)
    assert left == [], f"{where}: English left: {left}"


def korean_page(new_page) -> Page:
    return new_page(locale="ko-KR")


def log_in(page: Page, path: str, username: str) -> None:
    page.goto(path)
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("#id_password").press("Enter")


def test_caller_and_desk_in_korean_through_a_call(new_page, consultant):
    desk = korean_page(new_page)
    log_in(desk, "/desk/", consultant.slug)
    desk.wait_for_url("**/desk/")
    expect(desk.get_by_test_id("desk-status")).to_be_enabled()
    assert_korean(desk, "desk")

    caller = korean_page(new_page)
    caller.goto("/")
    card = caller.locator(
        f'[data-testid="consultant-card"][data-slug="{consultant.slug}"]'
    )
    expect(card).to_contain_text("온라인")
    assert_korean(caller, "lobby")

    card.click()
    expect_state(caller, "idle")
    expect(caller.get_by_test_id("caller-join")).to_be_enabled()
    assert_korean(caller, "join form")

    caller.get_by_test_id("caller-name").fill("김하나")
    caller.get_by_test_id("caller-join").click()
    expect_state(caller, "queued")
    expect(caller.get_by_test_id("queue-eta")).to_contain_text("예상 대기 시간")
    assert_korean(caller, "waiting")

    expect(queue_items(desk)).to_have_count(1)
    expect(desk.locator("[data-arrival]")).to_contain_text("김하나")
    assert_korean(desk, "desk with a caller")

    desk.get_by_test_id("desk-accept-next").click()
    expect_state(caller, "in-call")
    expect_state(desk, "in-call")
    assert_korean(caller, "in a call")
    assert_korean(desk, "desk in a call")

    caller.get_by_test_id("hangup").click()
    expect_state(caller, "ended")
    assert_korean(caller, "ended")


def make_superuser(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(
        username=username, password=PASSWORD, email=f"{username}@example.com"
    )


def test_the_admin_in_korean(new_page, django_db_blocker, consultant):
    with django_db_blocker.unblock():
        boss = off_the_loop(make_superuser, f"boss{next(_admins)}")
    admin = korean_page(new_page)
    # The admin's pages name no icon: spare the console Chromium's 404 for one.
    admin.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    log_in(admin, "/admin/consult/consultant/", boss.username)
    admin.wait_for_url("**/admin/consult/consultant/")
    assert_korean(admin, "admin: consultants")
    expect(admin.locator("#content")).to_contain_text("상담사")
    admin.goto("/admin/consult/consultation/")
    assert_korean(admin, "admin: consultations")
