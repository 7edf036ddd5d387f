from django.apps import AppConfig


class DeployConfig(AppConfig):
    """CD: values, revisions, credentials, rollouts and traffic moves; drivers (Django side) and targets."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "deploy"

    def ready(self) -> None:
        # deploy.receivers: the one receiver of release_transitioned (a table of transition -> task); deploy.tasks
        # registers the tasks it queues by name; deploy.drivers.local registers the "local" driver.
        from deploy import receivers, tasks  # noqa: F401
        from deploy.drivers import local  # noqa: F401
        from deploy.drivers import register_driver
        from deploy.drivers.kubernetes import driver

        register_driver("kubernetes", driver)

        from deploy.selectors import values_evidence
        from releases.selectors import EVIDENCE_SOURCES

        EVIDENCE_SOURCES["values"] = values_evidence  # what an approver is shown: values diff against what runs
