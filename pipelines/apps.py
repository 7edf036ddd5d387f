from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """CI: prepare, build, scan and push stages as Celery tasks; the pipeline ends when the release is ready."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self) -> None:
        # receivers: release_transitioned -> start the pipeline; tasks: registered so services can queue by name.
        from pipelines import receivers, tasks  # noqa: F401
