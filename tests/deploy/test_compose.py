"""docker-compose.yml: what the stack must hold, and what Compose itself says of it.

No Docker engine runs here, so nothing is started: Compose's own `config`
validates the file against the Compose schema with .env.example as the .env,
and the assertions check the shape the README promises.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("no Compose CLI: scripts/test.sh installs Debian's docker-compose")


@pytest.fixture(scope="module")
def stack() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    """The file as Compose resolves it, with .env.example as the .env."""
    work = tmp_path_factory.mktemp("compose")
    shutil.copy(COMPOSE, work / "docker-compose.yml")
    shutil.copy(ENV_EXAMPLE, work / ".env")
    done = subprocess.run(
        [*compose_command(), "config"], cwd=work, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {name: value for name, value in pairs}


def test_compose_validates_the_file(rendered):
    assert set(rendered["services"]) == {
        "db",
        "redis",
        "migrate",
        "app",
        "proxy",
        "coturn",
    }


def test_every_variable_the_file_uses_is_in_env_example():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))

    assert used - set(env_example()) == set()


def test_secrets_come_only_from_the_env_file():
    text = COMPOSE.read_text()
    for name in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "CONSULT_TURN_SECRET"):
        for line in text.splitlines():
            assert name not in line or f"${{{name}" in line, line
    assert "change-me" not in text


def test_app_runs_daphne_in_replicas_behind_postgres_and_redis(rendered):
    app = rendered["services"]["app"]

    assert app["deploy"]["replicas"] >= 2
    assert "ports" not in app, "only the proxy is reachable from outside"
    assert app["environment"]["DATABASE_URL"].startswith("postgres://")
    assert app["environment"]["REDIS_URL"].startswith("redis://redis:")
    assert app["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert "/healthz" in " ".join(app["healthcheck"]["test"])
    dockerfile = (ROOT / app["build"]["dockerfile"]).read_text()
    # daphne through signaling.serve, as the tests and the benchmark run it.
    assert '"signaling.serve"' in dockerfile
    assert "config.asgi:application" in dockerfile
    assert "\nUSER consult" in dockerfile


def test_long_running_services_have_health_checks(rendered):
    for name in ("db", "redis", "app", "proxy"):
        assert rendered["services"][name]["healthcheck"]["test"], name


def test_data_lives_in_volumes(rendered):
    db = rendered["services"]["db"]

    assert any("/var/lib/postgresql/data" in str(v) for v in db["volumes"])
    assert {"pgdata", "static"} <= set(rendered["volumes"])


def test_proxy_terminates_tls_and_is_the_trusted_forwarder(rendered, stack):
    proxy = rendered["services"]["proxy"]
    published = {str(p.get("target", p)) for p in proxy["ports"]} | {
        str(p) for p in stack["services"]["proxy"]["ports"]
    }
    address = proxy["networks"]["backend"]["ipv4_address"]

    assert any("443" in p for p in published)
    assert rendered["services"]["app"]["environment"]["CONSULT_TRUSTED_PROXIES"] == (
        address
    )
    template = (ROOT / "deploy/nginx/consult.conf.template").read_text()
    assert "listen 443 ssl" in template
    assert "proxy_set_header Upgrade $http_upgrade" in template
    assert "location /static/" in template
    # Overwritten, never appended: a client cannot forge the hops we trust.
    assert "X-Forwarded-For $remote_addr" in template
    assert "$proxy_add_x_forwarded_for" not in template


def test_coturn_uses_the_repo_config_and_the_secret_from_env(rendered):
    coturn = rendered["services"]["coturn"]
    command = " ".join(coturn["command"])

    assert "--static-auth-secret=change-me" in command
    assert any("turnserver.conf" in str(v) for v in coturn["volumes"])
    turn_urls = rendered["services"]["app"]["environment"]["CONSULT_TURN_URLS"]
    assert "turn:consult.example.com:3478?transport=udp" in turn_urls


def test_turnserver_conf_is_hardened_for_a_public_relay():
    lines = {
        line.strip()
        for line in (ROOT / "deploy/turnserver.conf").read_text().splitlines()
    }

    for option in (
        "use-auth-secret",
        "no-cli",
        "fingerprint",
        "no-multicast-peers",
        "no-tcp-relay",
        "denied-peer-ip=10.0.0.0-10.255.255.255",
        "denied-peer-ip=172.16.0.0-172.31.255.255",
        "denied-peer-ip=192.168.0.0-192.168.255.255",
        "denied-peer-ip=127.0.0.0-127.255.255.255",
        "denied-peer-ip=169.254.0.0-169.254.255.255",
        "denied-peer-ip=::1",
        "denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ):
        assert option in lines, option
    assert any(line.startswith("user-quota=") for line in lines)
    assert any(line.startswith("total-quota=") for line in lines)
    assert not any("allow-loopback-peers" in line for line in lines)
    assert not any(line.startswith("static-auth-secret") for line in lines)
