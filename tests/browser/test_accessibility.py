"""WCAG 2.2 AA by axe-core on every page and state a person meets: no violation."""

import pytest
from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import off_the_loop
from tests.browser.pages import (
    expect_state,
    join,
    open_call_page,
    open_desk,
    queue_items,
)
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def axe_page(new_page):
    """Pages whose CSP lets axe's inline script in (see tests/browser/a11y.py)."""
    return lambda **options: new_page(bypass_csp=True, **options)


def test_lobby_login_and_widget_pages(axe_page, consultant):
    page = axe_page()
    page.goto("/")
    expect(page.get_by_test_id("consultant-card")).to_have_count(1)
    assert_accessible(page, "lobby")

    page.goto("/accounts/login/")
    assert_accessible(page, "login")

    page.goto(f"/embed/call/{consultant.slug}/")
    expect_state(page, "idle")
    assert_accessible(page, "widget: call page")
    page.goto("/embed/")
    assert_accessible(page, "widget: picker")


def test_caller_and_desk_through_a_whole_call(axe_page, consultant):
    desk = open_desk(axe_page(), consultant.slug)
    assert_accessible(desk, "desk idle")

    caller = open_call_page(axe_page(), consultant.slug)
    assert_accessible(caller, "join form")
    join(caller, "Ada Caller", reason="My invoice")
    assert_accessible(caller, "waiting")

    expect(queue_items(desk)).to_have_count(1)
    assert_accessible(desk, "desk with callers")

    queue_items(desk).first.get_by_test_id("accept").click()
    expect_state(caller, "in-call")
    expect_state(desk, "in-call")
    assert_accessible(caller, "in call (caller)")
    assert_accessible(desk, "desk in call")

    caller.get_by_test_id("hangup").click()
    expect_state(caller, "ended")
    assert_accessible(caller, "ended")


def test_a_refused_caller(axe_page, consultant):
    desk = open_desk(axe_page(), consultant.slug)
    caller = open_call_page(axe_page(), consultant.slug)
    join(caller, "Rita")
    expect(queue_items(desk)).to_have_count(1)
    queue_items(desk).first.get_by_test_id("refuse").click()
    expect_state(caller, "refused")
    assert_accessible(caller, "refused")


NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= window.innerWidth"


def test_pages_reflow_at_320_css_pixels(axe_page, consultant):
    """WCAG 1.4.10: 320 px wide (a 1280 px screen at 400%, or a phone) needs
    no scrolling sideways."""
    desk = open_desk(axe_page(viewport={"width": 320, "height": 640}), consultant.slug)
    assert desk.evaluate(NO_SIDEWAYS_SCROLL), "desk"
    page = axe_page(viewport={"width": 320, "height": 640})
    for path in ["/", f"/call/{consultant.slug}/", "/accounts/login/"]:
        page.goto(path)
        assert page.evaluate(NO_SIDEWAYS_SCROLL), path
    join(open_call_page(page, consultant.slug), "Narrow Nan")
    assert page.evaluate(NO_SIDEWAYS_SCROLL), "waiting"


def make_superuser(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(
        username=username, password=PASSWORD, email=f"{username}@example.com"
    )


def test_our_admin_pages(axe_page, consultant, django_db_blocker):
    with django_db_blocker.unblock():
        boss = off_the_loop(make_superuser, "a11y-boss")
    admin = axe_page()
    # The admin's pages name no icon: spare the console Chromium's 404 for one.
    admin.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    admin.goto("/admin/login/?next=/admin/")
    assert_accessible(admin, "admin login")
    admin.fill("#id_username", boss.username)
    admin.fill("#id_password", PASSWORD)
    admin.locator("#id_password").press("Enter")
    admin.wait_for_url("**/admin/")
    for path in [
        "/admin/",
        "/admin/consult/consultant/",
        f"/admin/consult/consultant/{consultant.pk}/change/",
        "/admin/consult/ticket/",
        "/admin/consult/consultation/",
        "/admin/consult/embedsite/add/",
    ]:
        admin.goto(path)
        assert_accessible(admin, path)
