from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """Build, scan, push and deploy stages as Celery tasks; deploy targets under pipelines/targets/."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self) -> None:
        # Receivers of release_transitioned: start pipelines (receivers) and drive deploy targets (deploy_tasks).
        # local_driver registers the "local" target driver on import.
        from pipelines import deploy_tasks, local_driver, receivers  # noqa: F401
        from pipelines.deploying import register_driver
        from pipelines.kubernetes_driver import driver

        register_driver("kubernetes", driver)
