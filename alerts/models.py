"""What the Alertmanager receiver stores: one row per alert it was sent (firing or resolved) and what it did.

Writes happen only in alerts/services.py. The rows are the history of "why did Rollgate stop this canary"; the
release's own audit trail carries the transition itself (actor `alertmanager`, the alert's summary as reason).
"""
from django.db import models

from releases.models import Release


class AlertStatus(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class AlertOutcome(models.TextChoices):
    PAUSED = "paused", "Paused the canary"
    ROLLED_BACK = "rolled_back", "Rolled the canary back"
    ALREADY_STOPPED = "already_stopped", "The canary was already stopped"
    REFUSED = "refused", "The release services refused the action"
    NO_CANARY = "no_canary", "No canary matched the alert's labels"
    UNMATCHED = "unmatched", "The alert lacks the labels that name a service and environment"
    RECORDED = "recorded", "Resolved: recorded, nothing resumed"


class AlertEvent(models.Model):
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    status = models.CharField(max_length=10, choices=AlertStatus.choices)
    alertname = models.CharField(max_length=200, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    service_name = models.CharField(max_length=100, blank=True)
    environment_name = models.CharField(max_length=100, blank=True)
    version_tag = models.CharField(max_length=100, blank=True)
    summary = models.CharField(max_length=1000, blank=True)
    labels = models.JSONField(default=dict)
    starts_at = models.CharField(max_length=40, blank=True, help_text="as Alertmanager sent it (RFC 3339)")
    ends_at = models.CharField(max_length=40, blank=True)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="alert_events")
    outcome = models.CharField(max_length=20, choices=AlertOutcome.choices)
    detail = models.CharField(max_length=1000, blank=True, help_text="what was done or why not, in words")

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.alertname or 'alert'} {self.status} -> {self.outcome}"
