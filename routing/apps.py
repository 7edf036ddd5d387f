from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Gray routing for schedulers"

    def ready(self):
        from routing import receivers  # noqa: F401  (connects to releases.signals.release_transitioned)
