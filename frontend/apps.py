from django.apps import AppConfig


class FrontendConfig(AppConfig):
    """Server-rendered pages, htmx partials and the live-event websocket consumer."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "frontend"
