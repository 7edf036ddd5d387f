from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """Build, scan, push and deploy stages as Celery tasks; deploy targets under pipelines/targets/."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self):
        from pipelines import receivers  # noqa: F401  (connects the release_transitioned receiver)
