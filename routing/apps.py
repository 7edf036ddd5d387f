from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Gray routing for schedulers"

    def ready(self):
        from django.core.exceptions import ImproperlyConfigured

        from routing.prices import PriceTableError, configured_table

        try:  # a wrong price table stops the process at start, naming the model and the field
            configured_table()
        except PriceTableError as error:
            raise ImproperlyConfigured(str(error)) from None

        from releases.selectors import BLOCKED_VERSION_SOURCES
        from routing import receivers  # noqa: F401  (connects to releases.signals.release_transitioned)
        from routing.selectors import blocked_in_routing

        # The release domain's traffic rule refuses versions blocked in routing too (nothing redeploys them).
        if blocked_in_routing not in BLOCKED_VERSION_SOURCES:
            BLOCKED_VERSION_SOURCES.append(blocked_in_routing)
