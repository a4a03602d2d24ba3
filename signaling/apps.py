from django.apps import AppConfig


class SignalingConfig(AppConfig):
    name = "signaling"

    def ready(self):
        from consult.events import register_publisher

        # The socket counters join /metrics in every process, sockets or not.
        from . import metrics  # noqa: F401
        from .groups import publish

        # What operators do in the admin reaches the sockets it concerns.
        register_publisher(publish)
