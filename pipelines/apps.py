from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    """Build, scan, push and deploy stages as Celery tasks; deploy targets under pipelines/targets/."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "pipelines"

    def ready(self) -> None:
        # Deploy targets: the kubernetes driver, and the receivers that queue its traffic tasks.
        from pipelines import deploy_tasks  # noqa: F401
        from pipelines.deploying import register_driver
        from pipelines.kubernetes_driver import driver

        register_driver("kubernetes", driver)
