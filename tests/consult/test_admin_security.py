"""Staff who are not superusers cannot take over an identity or grant permissions
through any admin form, and see callers' addresses only with the permission."""

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.test import RequestFactory
from django.utils import timezone

from consult.models import Consultant
from tests.factories import PASSWORD, join, make_consultant

pytestmark = pytest.mark.django_db

# Form fields that grant an identity or permissions.
GRANTING = {
    "user",
    "is_superuser",
    "is_staff",
    "groups",
    "user_permissions",
    "permissions",
    "password",
    "password1",
    "password2",
}
# On an add form, what a new row needs: whose profile, and a first password.
ALLOWED_ON_ADD = {"user", "password1", "password2"}
ADDRESS = "203.0.113.77"


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def bob(db):
    return make_consultant("bob")


@pytest.fixture
def lead(client):
    """Staff with every permission there is, but not a superuser."""
    user = staff("lead")
    user.user_permissions.set(Permission.objects.all())
    client.force_login(user)
    return user


def editable_fields(response) -> set[str]:
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    readonly = set(response.context["adminform"].readonly_fields)
    return {
        name
        for name, field in form.fields.items()
        if name not in readonly and not field.disabled
    }


def test_no_admin_form_a_staff_user_reaches_grants_identity_or_permissions(
    client, lead, bob
):
    join(bob, "c1", address=ADDRESS)
    Group.objects.create(name="support")
    AccessAttempt.objects.create(
        username="bob",
        ip_address=ADDRESS,
        user_agent="test",
        failures_since_start=1,
        attempt_time=timezone.now(),
        get_data="",
        post_data="",
        http_accept="",
        path_info="/accounts/login/",
    )
    seen = set()
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        if model_admin.has_add_permission(_request(lead)):
            fields = editable_fields(client.get(base + "add/"))
            assert not (fields & GRANTING) - ALLOWED_ON_ADD, (model, fields)
        row = model_admin.get_queryset(_request(lead)).first()
        if row is None:
            continue
        page = client.get(f"{base}{row.pk}/change/")
        if page.status_code == 403:
            continue
        assert not editable_fields(page) & GRANTING, (model, editable_fields(page))
        seen.add(model)
    assert {Consultant, User, Group} <= seen


def _request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_staff_who_may_change_consultants_cannot_move_a_profile_to_themselves(
    client, bob
):
    mallory = staff("mallory", "view_consultant", "change_consultant")
    client.force_login(mallory)
    url = f"/admin/consult/consultant/{bob.pk}/change/"
    assert "user" not in editable_fields(client.get(url))

    client.post(
        url,
        {
            "user": mallory.pk,
            "name": bob.name,
            "slug": bob.slug,
            "title": "",
            "max_queue": 20,
            "is_active": "on",
        },
    )

    bob.refresh_from_db()
    assert bob.user.username == "bob"
    assert bob.name == "Bob"  # the rest of the form still saves


def test_a_superuser_may_move_a_profile(admin_client, bob):
    url = f"/admin/consult/consultant/{bob.pk}/change/"
    assert "user" in editable_fields(admin_client.get(url))


def test_staff_who_may_change_users_cannot_make_themselves_superuser(client):
    mallory = staff("mallory", "view_user", "change_user")
    client.force_login(mallory)
    every = Permission.objects.values_list("pk", flat=True)

    client.post(
        f"/admin/auth/user/{mallory.pk}/change/",
        {
            "username": "mallory",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "user_permissions": list(every),
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    mallory.refresh_from_db()
    assert not mallory.is_superuser
    assert set(mallory.user_permissions.values_list("codename", flat=True)) == {
        "view_user",
        "change_user",
    }


def test_staff_who_may_change_users_cannot_set_a_consultants_password(client, bob):
    mallory = staff("mallory", "view_user", "change_user")
    client.force_login(mallory)
    url = f"/admin/auth/user/{bob.user.pk}/password/"

    assert client.get(url).status_code == 403
    client.post(url, {"password1": "taken-over-99", "password2": "taken-over-99"})

    bob.user.refresh_from_db()
    assert bob.user.check_password(PASSWORD)


def test_staff_cannot_change_a_superuser(client, admin_user):
    mallory = staff("mallory", "view_user", "change_user", "delete_user")
    client.force_login(mallory)

    page = client.get(f"/admin/auth/user/{admin_user.pk}/change/")

    assert page.status_code == 200  # may look
    assert not editable_fields(page)
    assert client.post(f"/admin/auth/user/{admin_user.pk}/delete/").status_code == 403


def test_staff_who_may_change_groups_cannot_grant_them_permissions(client):
    mallory = staff("mallory", "view_group", "change_group", "add_group")
    group = Group.objects.create(name="support")
    mallory.groups.add(group)
    client.force_login(mallory)

    client.post(
        f"/admin/auth/group/{group.pk}/change/",
        {
            "name": "support",
            "permissions": list(Permission.objects.values_list("pk", flat=True)),
        },
    )

    assert not group.permissions.exists()


def test_caller_addresses_only_with_the_permission_made_for_it(client, bob):
    ticket, _ = join(bob, "c1", address=ADDRESS)
    viewer = staff("viewer", "view_ticket", "view_consultation")
    client.force_login(viewer)
    pages = [
        "/admin/consult/ticket/",
        f"/admin/consult/ticket/{ticket.pk}/change/",
        "/admin/consult/consultation/",
    ]

    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        assert ADDRESS not in page.content.decode(), url

    viewer.user_permissions.add(Permission.objects.get(codename="view_caller_address"))
    viewer = User.objects.get(pk=viewer.pk)  # permissions are cached per object
    client.force_login(viewer)
    detail = client.get(f"/admin/consult/ticket/{ticket.pk}/change/")
    assert ADDRESS in detail.content.decode()


def test_staff_cannot_change_another_users_email_to_reset_their_password(client, bob):
    """Setting bob's e-mail to one's own, then resetting his password through
    it, would be a takeover by another route."""
    mallory = staff("mallory", "view_user", "change_user")
    client.force_login(mallory)
    page = client.get(f"/admin/auth/user/{bob.user.pk}/change/")
    assert not editable_fields(page) & {"email", "username"}
    own = client.get(f"/admin/auth/user/{mallory.pk}/change/")
    assert "email" in editable_fields(own)

    client.post(
        f"/admin/auth/user/{bob.user.pk}/change/",
        {
            "username": "bob",
            "email": "mallory@evil.example",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    bob.user.refresh_from_db()
    assert bob.user.email == ""


def test_staff_cannot_free_a_consultants_slug_for_another_profile(client, bob):
    eve = staff("eve", "view_consultant", "change_consultant", "add_consultant")
    client.force_login(eve)
    page = client.get(f"/admin/consult/consultant/{bob.pk}/change/")
    assert "slug" not in editable_fields(page)
