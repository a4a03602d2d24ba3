"""Health and metrics: GET /healthz for orchestrators, GET /metrics for Prometheus.

Gauges of the queue are read from the database at scrape time, so every
replica reports the same, whole picture. Counters and the open-socket gauge
belong to the process that serves the scrape: scrape every replica (README,
"Deploy") and sum them.
"""

import asyncio
import hmac
import secrets

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from .addresses import in_networks, request_address
from .database import database_call
from .models import Consultant, Consultation
from .ops_metrics import OperationsCollector
from .selectors import consultants_with_live_state

HEALTH_TIMEOUT_SECONDS = 2

REGISTRY = CollectorRegistry()
LOGIN_LOCKOUTS = Counter(
    "consult_login_lockouts",
    "Login attempts refused because of too many failures.",
    registry=REGISTRY,
)


class QueueCollector:
    """Waiting callers per consultant and active consultations, from the database."""

    def collect(self):
        waiting = GaugeMetricFamily(
            "consult_waiting_callers",
            "Callers waiting in each consultant's queue.",
            labels=["consultant"],
        )
        rows = consultants_with_live_state(Consultant.objects.serving())
        for slug, count in rows.values_list("slug", "queue_length"):
            waiting.add_metric([slug], count)
        yield waiting
        active = Consultation.objects.filter(
            outcome=Consultation.Outcome.ACTIVE
        ).count()
        yield GaugeMetricFamily(
            "consult_active_consultations", "Consultations in progress.", value=active
        )


REGISTRY.register(QueueCollector())
REGISTRY.register(OperationsCollector())


def _metrics_allowed(request) -> bool:
    token = settings.CONSULT_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    return in_networks(request_address(request), settings.CONSULT_METRICS_ALLOWED_IPS)


def metrics(request):
    if not _metrics_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _database_answers() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _channel_layer_round_trip() -> None:
    layer = get_channel_layer()
    # The default prefix: channels_redis receives all of a process's own
    # channels through one shared loop, which serves only that prefix.
    channel = await layer.new_channel()
    try:
        nonce = secrets.token_hex(8)
        await layer.send(channel, {"type": "healthz", "nonce": nonce})
        message = await layer.receive(channel)
    finally:
        # The Redis layer keeps a channel live until told: one per check
        # would add up (signaling.layers); the in-memory one forgets by itself.
        if release := getattr(layer, "release", None):
            release(channel)
    if message.get("nonce") != nonce:
        raise RuntimeError("the channel layer returned another message")


async def _check(probe) -> str:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await probe()
    except Exception as error:
        return f"failed: {type(error).__name__}"
    return "ok"


async def healthz(request):
    checks = {
        "database": await _check(database_call(_database_answers)),
        "channel_layer": await _check(_channel_layer_round_trip),
    }
    healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "failing", **checks},
        status=200 if healthy else 503,
    )


class ProbeHost:
    """ASGI middleware: health checks and scrapes may name a replica by its address.

    Orchestrators and Prometheus reach each replica as `10.x.y.z:8000`, a host
    that ALLOWED_HOSTS rightly refuses. For these two paths only, which build
    nothing from the host, the request is served as if for our own host name.
    """

    PATHS = frozenset({"/healthz", "/metrics"})

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] in self.PATHS:
            own = next((h for h in settings.ALLOWED_HOSTS if h != "*"), "localhost")
            headers = [(k, v) for k, v in scope["headers"] if k != b"host"]
            headers.append((b"host", own.lstrip(".").encode()))
            scope = dict(scope, headers=headers)
        return await self.app(scope, receive, send)
