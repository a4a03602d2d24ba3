"""The embedded consulting bot over HTTP: the script, the allow-list, the framing
headers of every page, the management command and the admin (docs/embed.md)."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from consult import embed
from consult.embed_views import script_and_version
from consult.models import EmbedSite
from tests.factories import make_consultant

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com"
CLINIC = "https://clinic.example.org:8443"


def policy(response) -> dict[str, list[str]]:
    directives = response.headers["Content-Security-Policy"].split(";")
    parsed = (d.split() for d in directives if d.strip())
    return {name: sources for name, *sources in parsed}


def ancestors(response) -> list[str]:
    return policy(response)["frame-ancestors"]


@pytest.fixture
def sites(consultant):
    grace = make_consultant("grace", name="Grace Hopper")
    shop = EmbedSite.objects.create(origin=SHOP, label="Shop")
    clinic = EmbedSite.objects.create(origin=CLINIC, label="Clinic")
    clinic.consultants.set([grace])
    EmbedSite.objects.create(
        origin="https://gone.example.net", label="Gone", is_active=False
    )
    return shop, clinic


# --- origins ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("  HTTPS://Shop.Example.COM/ ", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_are_written_as_browsers_send_them(given, origin):
    assert embed.normalize_origin(given) == origin


@pytest.mark.parametrize(
    ("junk", "says"),
    [
        ("", "Give an origin"),
        ("shop.example.com", "starts with https://"),
        ("ftp://shop.example.com", "starts with https://"),
        ("javascript:alert(1)", "starts with https://"),
        ("https://shop.example.com/page", "no path"),
        ("https://shop.example.com?x=1", "no path"),
        ("https://shop.example.com#top", "no path"),
        ("https://user:pw@shop.example.com", "no user name"),
        ("https://shop.example.com:99999", "port"),
        ("https://shop.example.com:0", "port"),
        ("https://", "no host"),
        ("https://shop_example.com", "not a valid host"),
        ("https://shop.example.com; script-src *", "spaces"),
        ("https://" + "a" * 300 + ".com", "too long"),
    ],
)
def test_junk_origins_are_refused_with_a_reason(junk, says):
    with pytest.raises(ValidationError) as caught:
        embed.normalize_origin(junk)
    assert says in caught.value.messages[0]


def test_only_active_sites_are_allowed(sites):
    assert embed.allowed_origins() == [CLINIC, SHOP]
    assert embed.site_for_origin("https://SHOP.example.com:443") == sites[0]
    assert embed.site_for_origin("https://gone.example.net") is None
    assert embed.site_for_origin("null") is None
    assert embed.site_for_origin(None) is None


# --- the script -------------------------------------------------------------------


def test_script_is_small_short_cached_and_revalidated(client):
    response = client.get("/embed.js")
    body, version = script_and_version()

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    # Small on every host page (it now also speaks the page's language).
    assert len(response.content) == len(body) < 11 * 1024
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["ETag"] == f'"{version}"'
    assert response["Access-Control-Allow-Origin"] == "*"
    again = client.get("/embed.js", HTTP_IF_NONE_MATCH=f'"{version}"')
    assert again.status_code == 304
    assert again.content == b""


def test_versioned_script_is_cached_for_good_and_an_old_version_redirects(client):
    _, version = script_and_version()

    current = client.get(f"/embed.{version}.js")
    assert current.status_code == 200
    assert current["Cache-Control"] == "public, max-age=31536000, immutable"

    old = client.get("/embed.0123456789ab.js")
    assert old.status_code == 302
    assert old["Location"] == "/embed.js"
    assert client.get("/embed.js", HTTP_X_IGNORED="x").status_code == 200


def test_script_has_no_dependencies_and_uses_the_contracts_hooks():
    body, _ = script_and_version()
    text = body.decode()

    assert "import " not in text and "require(" not in text
    assert 'data-testid="consult-launcher"' in text
    assert '"consult-frame"' in text
    assert 'mode: "open"' in text
    assert 'allow = "camera; microphone; autoplay; display-capture"' in text
    for event in ("queued", "position", "in-call", "ended", "refused"):
        assert f'"{event}"' in text


def test_site_check_answers_by_the_browsers_origin_header(client, sites):
    allowed = client.get("/embed/site.js", HTTP_ORIGIN=SHOP)
    other = client.get("/embed/site.js", HTTP_ORIGIN="https://evil.example")
    inactive = client.get("/embed/site.js", HTTP_ORIGIN="https://gone.example.net")
    none = client.get("/embed/site.js")

    assert b'{"allowed": true}' in allowed.content
    for response in (other, inactive, none):
        assert b'{"allowed": false}' in response.content
    # Readable by any page that asks (else the browser logs a CORS error), and
    # cached per origin.
    assert allowed["Access-Control-Allow-Origin"] == "*"
    assert "Origin" in [part.strip() for part in allowed["Vary"].split(",")]
    # It does not tell who else is on the list.
    assert CLINIC.encode() not in allowed.content


# --- framing ----------------------------------------------------------------------


def test_app_pages_refuse_to_be_framed(client, sites, consultant):
    client.force_login(consultant.user)
    for path in ["/", "/call/ada/", "/desk/", "/accounts/login/", "/healthz"]:
        response = client.get(path)
        assert response["X-Frame-Options"] == "DENY", path
        assert ancestors(response) == ["'none'"], path


def test_embedded_pages_are_framable_by_exactly_the_allowed_origins(client, sites):
    picker = client.get("/embed/")
    ada = client.get("/embed/call/ada/")
    grace = client.get("/embed/call/grace/")

    for response in (picker, ada, grace):
        assert response.status_code == 200
        assert "X-Frame-Options" not in response
        assert response["Cache-Control"] == "no-store"
    assert ancestors(picker) == [CLINIC, SHOP]
    # The clinic may offer Grace only.
    assert ancestors(ada) == [SHOP]
    assert ancestors(grace) == [CLINIC, SHOP]
    # The rest of the policy is the app's.
    assert policy(ada)["script-src"] == ["'self'"]


def test_a_frame_that_names_its_site_is_framable_by_that_site_alone(client, sites):
    response = client.get("/embed/call/ada/", {"host": SHOP})

    assert ancestors(response) == [SHOP]
    assert f'"{SHOP}"' in response.content.decode()  # the postMessage target


@pytest.mark.parametrize(
    "host", ["https://evil.example", "https://gone.example.net", "junk", "x" * 500]
)
def test_a_frame_that_names_another_site_is_framable_by_nobody(client, sites, host):
    for path in ["/embed/", "/embed/call/ada/"]:
        response = client.get(path, {"host": host})
        assert response.status_code == 200
        assert ancestors(response) == ["'none'"]
        assert response["X-Frame-Options"] == "DENY"
        assert "evil" not in response.content.decode()


def test_with_no_site_on_the_list_nothing_may_frame_the_app(client, consultant):
    assert ancestors(client.get("/embed/")) == ["'none'"]
    assert ancestors(client.get("/embed/call/ada/")) == ["'none'"]


# --- the embedded pages -----------------------------------------------------------


def test_picker_lists_the_consultants_the_site_may_offer(client, sites):
    shop = client.get("/embed/", {"host": SHOP}).content.decode()
    clinic = client.get("/embed/", {"host": CLINIC, "lang": "en"}).content.decode()

    assert 'data-slug="ada"' in shop and 'data-slug="grace"' in shop
    assert 'data-slug="ada"' not in clinic
    query = "?host=https%3A%2F%2Fclinic.example.org%3A8443&amp;lang=en"
    assert f'href="/embed/call/grace/{query}"' in clinic


@pytest.mark.parametrize(
    "slug", ["nobody", "grace%20x", "..", "%3Cscript%3E", "a" * 200, "ada'\""]
)
def test_an_unknown_consultant_shows_the_picker(client, sites, slug):
    response = client.get(f"/embed/call/{slug}/", {"host": SHOP})

    assert response.status_code == 200
    text = response.content.decode()
    assert 'data-testid="embed-notice"' in text
    assert 'data-testid="consultant-card"' in text
    assert "<script>" not in text


def test_a_consultant_the_site_may_not_offer_shows_its_picker(client, sites):
    response = client.get("/embed/call/ada/", {"host": CLINIC})

    text = response.content.decode()
    assert 'data-testid="embed-notice"' in text
    assert 'data-slug="grace"' in text
    assert "data-call-page" not in text
    assert ancestors(response) == [CLINIC]


def test_a_caller_sent_on_by_the_business_follows_to_any_consultant(client, sites):
    """A move or transfer to someone the site does not list stays in the frame."""
    response = client.get("/embed/call/ada/", {"host": CLINIC, "follow": "1"})

    assert "data-call-page" in response.content.decode()
    assert ancestors(response) == [CLINIC]


def test_embedded_call_page_is_the_call_page_without_the_site_header(client, sites):
    text = client.get("/embed/call/ada/", {"host": SHOP, "lang": "xx-junk!"}).content
    text = text.decode()

    for hook in ["caller-name", "caller-join", "call-state", "queue-position"]:
        assert f'data-testid="{hook}"' in text
    assert 'class="top"' not in text  # no login link, no lobby link in the header
    assert 'class="embedded"' in text
    assert '<html lang="en" dir="ltr">' in text
    assert "js/call.js" in text and "js/embedframe.js" in text


def test_embedded_pages_have_no_inline_script(client, sites):
    for path in ["/embed/", "/embed/call/ada/", "/embed/call/nobody/"]:
        html = client.get(path, {"host": SHOP}).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\son[a-z]+\s*=", html), path


def test_embed_pages_answer_get_only(client, sites):
    assert client.post("/embed/call/ada/").status_code in (403, 405)
    assert client.post("/embed.js").status_code in (403, 405)


def test_demo_host_page_is_for_debug_only_and_names_the_other_origin(
    client, settings, sites
):
    assert client.get("/embed/demo/").status_code == 404
    settings.DEBUG = True

    redirect = client.get("/embed/demo/", HTTP_HOST="127.0.0.1:8000")
    assert redirect.status_code == 302
    assert redirect["Location"] == "http://localhost:8000/embed/demo/"

    page = client.get("/embed/demo/", HTTP_HOST="localhost:8000")
    assert 'src="http://127.0.0.1:8000/embed.js"' in page.content.decode()
    csp = policy(page)
    assert csp["script-src"] == ["'self'", "http://127.0.0.1:8000"]
    assert csp["frame-src"] == ["http://127.0.0.1:8000"]
    assert 'camera=(self "http://127.0.0.1:8000")' in page["Permissions-Policy"]


# --- the command ------------------------------------------------------------------


def test_embedsite_add_list_and_remove(consultant, capsys):
    call_command("embedsite", "add", "HTTPS://Shop.Example.com/", "--consultant", "ada")
    site = EmbedSite.objects.get()
    assert site.origin == SHOP
    assert site.label == "shop.example.com"
    assert [c.slug for c in site.consultants.all()] == ["ada"]
    out = capsys.readouterr().out
    assert "Added https://shop.example.com" in out
    assert 'data-consultant="ada"' in out

    call_command("embedsite", "add", SHOP, "--label", "The shop")
    site.refresh_from_db()
    assert site.label == "The shop"
    assert site.consultants.count() == 0  # every consultant now

    call_command("embedsite", "list")
    assert "https://shop.example.com  The shop  offers: every consultant" in (
        capsys.readouterr().out
    )
    call_command("embedsite", "remove", SHOP)
    assert not EmbedSite.objects.exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["add", "shop.example.com"], "starts with https://"),
        (["add", "https://shop.example.com/shop/"], "no path"),
        (["add", SHOP, "--consultant", "nobody"], "No consultant with the slug"),
        (["remove", "https://never.example.com"], "is not on the list"),
    ],
)
def test_embedsite_refuses_junk_with_a_clear_message(consultant, args, says):
    with pytest.raises(CommandError, match=says):
        call_command("embedsite", *args)
    assert not EmbedSite.objects.exists()


def test_seed_demo_allows_the_demo_host(settings):
    settings.DEBUG = True
    call_command("seed_demo", "--embed-origin", "http://localhost:8123")
    call_command("seed_demo", "--embed-origin", "http://localhost:8123")

    assert embed.allowed_origins() == ["http://localhost:8123"]


# --- the admin --------------------------------------------------------------------


@pytest.fixture
def lead_client(client):
    get_user_model().objects.create_superuser("lead", password="a-lead-password")
    client.login(username="lead", password="a-lead-password")
    return client


def test_admin_lists_sites_and_shows_each_ones_snippet(lead_client, sites):
    listing = lead_client.get("/admin/consult/embedsite/").content.decode()
    assert SHOP in listing and CLINIC in listing
    assert "every consultant" in listing and "Grace Hopper" in listing

    clinic = sites[1]
    page = lead_client.get(f"/admin/consult/embedsite/{clinic.pk}/change/")
    text = page.content.decode()
    assert (
        "&lt;script src=&quot;http://testserver/embed.js&quot; "
        "data-consultant=&quot;grace&quot; async&gt;&lt;/script&gt;"
    ) in text
    assert 'data-testid="embed-snippet"' in text


def test_admin_refuses_an_origin_with_a_path(lead_client, consultant):
    response = lead_client.post(
        "/admin/consult/embedsite/add/",
        {"origin": "https://shop.example.com/page", "label": "Shop", "is_active": "on"},
    )
    assert response.status_code == 200
    assert "no path" in response.content.decode()
    assert not EmbedSite.objects.exists()

    lead_client.post(
        "/admin/consult/embedsite/add/",
        {"origin": "HTTPS://SHOP.example.com:443", "label": "Shop", "is_active": "on"},
    )
    assert EmbedSite.objects.get().origin == SHOP
