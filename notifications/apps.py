from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        # receivers: turn audit rows into deliveries (same transaction); tasks: registered by their stable names.
        from notifications import receivers, tasks  # noqa: F401
