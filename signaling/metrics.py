"""Counters of this process's sockets, served on /metrics with the queue's gauges.

They belong to the process that counts them: scrape every replica and sum
(README, "Deploy"). Registered when the app loads (`SignalingConfig.ready`).
"""

from prometheus_client import Counter, Gauge

from consult.observability import REGISTRY

SOCKETS_OPEN = Gauge(
    "consult_sockets_open",
    "WebSocket connections open in this process.",
    ["role"],
    registry=REGISTRY,
)
SOCKETS_REFUSED = Counter(
    "consult_sockets_refused",
    "WebSocket connections closed at once for too many from one address.",
    registry=REGISTRY,
)
RELAYED = Counter(
    "consult_relayed_frames",
    "Frames relayed from one party to the other, by type (rate() gives per second).",
    ["type"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "consult_errors",
    "Error frames sent to clients, by code.",
    ["code"],
    registry=REGISTRY,
)
ADMISSION_LAG = Gauge(
    "consult_event_loop_lag_seconds",
    "This process's event-loop lag, smoothed, as admission control sees it.",
    registry=REGISTRY,
)
ADMISSION_REFUSED = Counter(
    "consult_admission_refused",
    "New work answered try_later while the event loop lagged, by kind.",
    ["what"],
    registry=REGISTRY,
)
