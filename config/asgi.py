"""The ASGI entry point: pages over HTTP; WebSockets behind the origin check.

The desk's socket is also behind session auth (see `signaling.routing`).
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

# Thousands of sockets are hundreds of thousands of long-lived objects. With
# the default thresholds the collector walks them all every few hundred
# thousand allocations, which stalled a 10,000-socket process for about a
# second during a lobby push (docs/benchmarks.md). Leave what start-up made
# out of collections, and collect less often.
gc.freeze()
gc.set_threshold(50_000, 20, 100)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from consult.observability import ProbeHost  # noqa: E402
from signaling.limits import SocketLimits  # noqa: E402
from signaling.origins import OriginCheck  # noqa: E402
from signaling.routing import websocket_urlpatterns  # noqa: E402
from signaling.runtime import StartRuntime  # noqa: E402

application = StartRuntime(
    ProtocolTypeRouter(
        {
            "http": ProbeHost(django_asgi_app),
            # The origin check (scheme, host and port, exactly) sits outside
            # auth, so a foreign page never gets as far as reading the session
            # (HTTP 403 at the handshake).
            "websocket": OriginCheck(SocketLimits(URLRouter(websocket_urlpatterns))),
        }
    )
)
