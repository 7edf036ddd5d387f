from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """Build, scan, push and deploy stages as Celery tasks; deploy targets under pipelines/targets/."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self):
        # Deploy target drivers register themselves with pipelines.deploying on import.
        from pipelines import local_driver  # noqa: F401
