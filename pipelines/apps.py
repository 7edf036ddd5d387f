from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """CI: prepare, build, scan and push stages as Celery tasks; the pipeline ends when the release is ready."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self) -> None:
        # receivers: release_transitioned -> start the pipeline; tasks: registered so services can queue by name.
        # checks: the durable-work settings fit together (run by manage.py check and at worker start-up).
        from pipelines import checks, receivers, tasks  # noqa: F401
        from pipelines.selectors import scan_evidence
        from releases.selectors import EVIDENCE_SOURCES

        EVIDENCE_SOURCES["scan"] = scan_evidence  # what an approver is shown of the image's scan
