"""The WebSocket consumers: transport only.

Each frame is checked by `signaling.messages`, dispatched to `on_<type>`, which
calls one service of `consult.services` and sends the result; the service's
events are published after its transaction commits. Domain and protocol
errors become `error` frames; nothing a client sends closes a socket with 1011.
`base` holds what both sockets share, `caller` and `desk` one consumer each.
"""

from .caller import CallerConsumer
from .desk import DeskConsumer

__all__ = ["CallerConsumer", "DeskConsumer"]
