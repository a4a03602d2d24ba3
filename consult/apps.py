from django.apps import AppConfig


class ConsultConfig(AppConfig):
    name = "consult"
    verbose_name = "Consultations"

    def ready(self):
        from . import signals, throttle  # noqa: F401
