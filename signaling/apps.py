from django.apps import AppConfig


class SignalingConfig(AppConfig):
    name = "signaling"

    def ready(self):
        # The socket counters join /metrics in every process, sockets or not.
        from . import metrics  # noqa: F401
