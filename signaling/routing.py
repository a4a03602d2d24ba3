from channels.auth import AuthMiddlewareStack
from django.urls import path

from .consumers import CallerConsumer, DeskConsumer

websocket_urlpatterns = [
    # Callers are anonymous: no session or user is loaded for their sockets,
    # which saves memory and a session lookup per caller.
    path("ws/call/", CallerConsumer.as_asgi()),
    path("ws/desk/", AuthMiddlewareStack(DeskConsumer.as_asgi())),
]
