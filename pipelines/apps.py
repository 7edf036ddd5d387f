from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """Build, scan, push and deploy stages as Celery tasks; deploy targets under pipelines/targets/."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self) -> None:
        # Deploy-target drivers (pipelines.deploying registry) and the receivers that queue their traffic tasks.
        from pipelines import deploy_tasks, local_driver  # noqa: F401  (local_driver registers itself on import)
        from pipelines.deploying import register_driver
        from pipelines.kubernetes_driver import driver

        register_driver("kubernetes", driver)
