from django.apps import AppConfig


class SlaConfig(AppConfig):
    """Metric catalog, Prometheus queries, SLA policies, verdicts, reports and the gray ramp decisions."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "sla"
