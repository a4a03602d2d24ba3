"""Production hardening: Django's deploy check, and the Content Security Policy."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_consultant

ROOT = Path(__file__).resolve().parents[2]


def deploy_check(tmp_path, **overrides) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "REDIS_", "DATABASE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="consult.example.com",
        SQLITE_PATH=str(tmp_path / "deploy-check.sqlite3"),
        **overrides,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_deploy_check_is_clean_under_production_settings(tmp_path):
    done = deploy_check(tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_deploy_check_catches_debug_left_on(tmp_path):
    done = deploy_check(tmp_path, DJANGO_DEBUG="1")

    assert done.returncode != 0
    assert "security.W018" in done.stderr


def policy(response) -> dict[str, list[str]]:
    directives = response.headers["Content-Security-Policy"].split(";")
    parsed = (d.split() for d in directives if d.strip())
    return {name: sources for name, *sources in parsed}


@pytest.mark.django_db
def test_pages_allow_scripts_only_from_our_origin(client):
    csp = policy(client.get("/"))

    assert csp["script-src"] == ["'self'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in s for sources in csp.values() for s in sources)


@pytest.mark.django_db
def test_pages_may_connect_only_to_our_own_websocket(client):
    over_https = policy(client.get("/", secure=True))
    over_http = policy(client.get("/"))

    assert over_https["connect-src"] == ["'self'", "wss://testserver"]
    assert over_http["connect-src"] == ["'self'", "ws://testserver"]


@pytest.mark.django_db
def test_camera_and_microphone_only_for_our_own_pages(client):
    permissions = client.get("/").headers["Permissions-Policy"]

    assert "camera=(self)" in permissions
    assert "microphone=(self)" in permissions


@pytest.mark.django_db
def test_no_page_has_inline_script_the_policy_would_block(client):
    consultant = make_consultant("ada")
    client.force_login(consultant.user)
    pages = ["/", "/call/ada/", "/desk/", "/accounts/login/"]

    for page in pages:
        html = client.get(page, secure=True).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (page, tag)
        assert not re.search(r"\son[a-z]+\s*=", html), page
