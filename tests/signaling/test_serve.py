"""`python -m signaling.serve`, as deployed: sockets that open together are not
pinged together; a socket's input keeps its frames in order."""

import asyncio
import os
import time

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.uri import parse_uri

from signaling.serve import Inbox
from tests.live import HOST, Server
from tests.signaling.live import TIMEOUT, running_servers

PING_INTERVAL = 6  # seconds; daphne looks for pings due every 2 s
SOCKETS = 12


async def first_ping(server: Server, path: str) -> float:
    """Open a socket at `path` and wait for the server's first ping: when it
    came (`time.monotonic()`). Each frame is read as it arrives, pings too,
    which websockets' connection classes answer without telling."""
    reader, writer = await asyncio.open_connection(HOST, server.port)
    protocol = ClientProtocol(parse_uri(f"ws://{HOST}:{server.port}{path}"))
    request = protocol.connect()
    request.headers["Origin"] = server.origin
    protocol.send_request(request)
    try:
        while True:
            writer.write(b"".join(protocol.data_to_send()))
            data = await asyncio.wait_for(reader.read(65536), PING_INTERVAL + TIMEOUT)
            assert data, "the server closed the socket before it pinged"
            protocol.receive_data(data)
            for event in protocol.events_received():
                if getattr(event, "opcode", None) is Opcode.PING:
                    return time.monotonic()
    finally:
        writer.close()


@pytest.mark.processes
@pytest.mark.django_db(transaction=True)
async def test_sockets_opened_together_are_pinged_at_different_times(tmp_path):
    """Twelve sockets open at once: their first pings come spread over the
    ping interval, not in one go (daphne alone pings them all in one tick)."""
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    with running_servers(
        1,
        tmp_path,
        redis_url,
        args=("--ping-interval", str(PING_INTERVAL), "--ping-timeout", "30"),
        CONSULT_MAX_SOCKETS_PER_ADDRESS=str(SOCKETS),
    ) as (server,):
        pings = await asyncio.gather(
            *(first_ping(server, "/ws/call/") for _ in range(SOCKETS))
        )
    # At a uniformly random phase, all twelve in one of the (at least three)
    # 2 s ticks of a 6 s interval has odds below 1 in 170,000.
    assert max(pings) - min(pings) > 1, sorted(p - min(pings) for p in pings)


async def test_an_inbox_gives_its_messages_in_order_to_a_waiting_reader():
    inbox = Inbox()
    inbox.put_nowait({"n": 1})
    reader = asyncio.ensure_future(inbox.get())
    assert await reader == {"n": 1}
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait({"n": 2})
    inbox.put_nowait({"n": 3})
    assert [await reader, await inbox.get()] == [{"n": 2}, {"n": 3}]


async def test_a_reader_cancelled_after_a_message_came_loses_nothing():
    inbox = Inbox()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait({"type": "websocket.disconnect"})
    reader.cancel()
    await asyncio.sleep(0)
    assert await asyncio.wait_for(inbox.get(), 1) == {"type": "websocket.disconnect"}
