from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """CI: prepare, build, scan and push stages as Celery tasks; the pipeline ends when the release is ready."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self) -> None:
        from pipelines import receivers  # noqa: F401  (release_transitioned -> start the pipeline)
