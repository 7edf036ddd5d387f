from django.apps import AppConfig


class SlaConfig(AppConfig):
    """Metric catalog, Prometheus queries, SLA policies, verdicts, reports and the gray ramp decisions."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "sla"

    def ready(self) -> None:
        from releases.selectors import EVIDENCE_SOURCES
        from sla.selectors import sla_evidence

        EVIDENCE_SOURCES["sla"] = sla_evidence  # what an approver is shown: the previous environment's verdict
