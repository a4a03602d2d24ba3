"""GET /healthz and GET /metrics."""

import pytest
from channels.layers import channel_layers

from tests.factories import accept, join, make_consultant

pytestmark = pytest.mark.django_db

OUTSIDE = "203.0.113.50"


# The health check reads the database from a worker thread, as under daphne.
healthz_db = pytest.mark.django_db(transaction=True)


@healthz_db
def test_healthz_reports_database_and_channel_layer_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "channel_layer": "ok",
    }


@healthz_db
def test_healthz_is_503_when_the_channel_layer_is_down(client, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Nothing listens on port 1.
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()

    assert response.status_code == 503
    assert response.json()["database"] == "ok"
    assert response.json()["channel_layer"].startswith("failed")


@healthz_db
def test_healthz_is_served_over_plain_http_despite_the_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 301


def metric_lines(response) -> set[str]:
    return set(response.content.decode().splitlines())


def test_metrics_count_waiting_callers_per_consultant_and_active_calls(client):
    ada = make_consultant("ada")
    make_consultant("grace")
    join(ada, "caller-1")
    join(ada, "caller-2")
    accept(ada)

    lines = metric_lines(client.get("/metrics"))

    assert 'consult_waiting_callers{consultant="ada"} 1.0' in lines
    assert 'consult_waiting_callers{consultant="grace"} 0.0' in lines
    assert "consult_active_consultations 1.0" in lines


def test_metrics_are_refused_to_other_addresses(client):
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 403


def test_metrics_behind_the_proxy_count_the_client_not_the_proxy(client, settings):
    settings.CONSULT_TRUSTED_PROXIES = ["172.30.0.10"]
    settings.CONSULT_METRICS_ALLOWED_IPS = ["172.30.0.0/24"]
    through_proxy = client.get(
        "/metrics", REMOTE_ADDR="172.30.0.10", HTTP_X_FORWARDED_FOR=OUTSIDE
    )
    scraper = client.get("/metrics", REMOTE_ADDR="172.30.0.20")

    assert through_proxy.status_code == 403
    assert scraper.status_code == 200


def test_metrics_with_the_bearer_token_are_served_anywhere(client, settings):
    settings.CONSULT_METRICS_TOKEN = "scrape-token"

    good = client.get(
        "/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer scrape-token"
    )
    bad = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer no")

    assert good.status_code == 200
    assert good["Content-Type"].startswith("text/plain")
    assert bad.status_code == 403


@healthz_db
async def test_probes_may_name_a_replica_by_its_address_but_pages_may_not():
    from channels.testing import HttpCommunicator

    from config.asgi import application
    from signaling import runtime

    by_address = [(b"host", b"172.30.0.5:8000")]
    # A layer is bound to the event loop it was made on: this test's own.
    channel_layers.backends.clear()
    try:
        health = await HttpCommunicator(
            application, "GET", "/healthz", headers=by_address
        ).get_response(timeout=10)
        page = await HttpCommunicator(
            application, "GET", "/", headers=by_address
        ).get_response(timeout=10)
    finally:
        await runtime.stop()
        channel_layers.backends.clear()

    assert health["status"] == 200
    assert page["status"] == 400
