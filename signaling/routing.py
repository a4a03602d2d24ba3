from django.urls import path

from .consumers import CallerConsumer, DeskConsumer

websocket_urlpatterns = [
    path("ws/call/", CallerConsumer.as_asgi()),
    path("ws/desk/", DeskConsumer.as_asgi()),
]
