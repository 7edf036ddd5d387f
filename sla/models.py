"""What the SLA gate stores: policy versions, one gate record per release, SLA reports and the chart history.

Writes happen only in sla/services.py.  The Django-free core (catalog, prometheus, stats, policy, verdict,
gate) knows nothing of these models; the services translate between the two.
"""
from django.db import models
from django.db.models import Q

from releases.models import AgentService, Environment, Release, VersionedRecord

REPORT_STATUSES = ("verified", "watching", "blocked", "rollbacked", "manual_review")
REPORT_ACTIONS = ("ready_to_promote", "hold", "pause", "block_version", "rollback")


class SlaPolicyVersion(VersionedRecord):
    """One saved version of an environment's SLA policy (service=None: the full policy) or of a service's
    overrides on top of it (only the overridden fields).  Rows are never edited: a change is a new number."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="sla_policy_versions")
    service = models.ForeignKey(AgentService, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="sla_policy_versions")
    policy = models.JSONField(help_text="full policy (environment) or overridden fields only (service)")
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["environment", "service", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "number"], condition=Q(service__isnull=True),
                                    name="sla_policy_env_number_unique"),
            models.UniqueConstraint(fields=["environment", "service", "number"], condition=Q(service__isnull=False),
                                    name="sla_policy_service_number_unique"),
        ]

    def __str__(self) -> str:
        scope = f"{self.environment.name}/{self.service.name}" if self.service_id else self.environment.name
        return f"SLA policy {scope} v{self.number}"


class GateRecord(models.Model):
    """The gate's memory of one release: GateState, the last verdict and the evaluation sequence number.

    `sequence` is the claim: an evaluation started when the record was at sequence N may only be stored (and
    acted on) by `filter(sequence=N).update(sequence=N + 1)`; a duplicate delivery loses that race and stops.
    """

    release = models.OneToOneField(Release, primary_key=True, on_delete=models.CASCADE, related_name="sla_gate")
    sequence = models.PositiveIntegerField(default=0)
    state = models.JSONField(default=dict, help_text="sla.verdict.GateState.to_dict()")
    evaluated_weight = models.PositiveSmallIntegerField(default=0, help_text="gray weight at the last evaluation")
    status = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=20, blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    last_verdict = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True, help_text="Prometheus trouble at the last evaluation")
    consecutive_errors = models.PositiveIntegerField(default=0)
    action_taken = models.CharField(max_length=300, blank=True, help_text="what the controller did, in words")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    healthy_at = models.DateTimeField(null=True, blank=True,
                                      help_text="when the release was marked healthy (allowed into the main path)")
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def healthy(self) -> bool:
        return self.healthy_at is not None


class SlaReport(models.Model):
    """One stored SLA snapshot: the design document's report as columns, plus the full verdict."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="sla_reports")
    service = models.ForeignKey(AgentService, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="+")
    sequence = models.PositiveIntegerField(help_text="gate evaluation that produced it")
    gray_weight = models.PositiveSmallIntegerField()
    version = models.CharField(max_length=100, db_index=True)
    start_ts = models.DateTimeField()
    agent_group = models.CharField(max_length=200)
    success_rate = models.FloatField(null=True)
    p95_latency_ms = models.IntegerField(null=True)
    error_trace_ratio = models.FloatField(null=True)
    callback_fail_rate = models.FloatField(null=True)
    eval_score = models.FloatField(null=True, help_text="the canary's mean eval score over the quality window "
                                                        "(LLM quality); null when its traces carry none")
    status = models.CharField(max_length=20)
    action = models.CharField(max_length=20)
    outcome = models.CharField(max_length=20)
    evaluated_at = models.DateTimeField(help_text="the instant Prometheus was queried at")
    verdict = models.JSONField(help_text="sla.verdict.Verdict.to_dict(): reasons, findings with queries and windows")
    readings = models.JSONField(default=dict, help_text="every number with its exact query and window")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-evaluated_at", "-id"]
        indexes = [models.Index(fields=["version", "-evaluated_at"]),
                   models.Index(fields=["release", "-evaluated_at"]),
                   # the report list and its cursors: newest first by (evaluated_at, id)
                   models.Index(fields=["evaluated_at", "id"], name="sla_report_newest")]
        constraints = [models.UniqueConstraint(fields=["release", "sequence"], name="sla_report_one_per_evaluation")]

    def design_shape(self) -> dict:
        return {
            "version": self.version,
            "start_ts": self.start_ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "agent_group": self.agent_group,
            "success_rate": self.success_rate,
            "p95_latency_ms": self.p95_latency_ms,
            "error_trace_ratio": self.error_trace_ratio,
            "callback_fail_rate": self.callback_fail_rate,
            "status": self.status,
            "action": self.action,
        }


class SlaSample(models.Model):
    """A compact row per evaluation: canary and baseline numbers for the charts. Pruned after N days."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="sla_samples")
    sequence = models.PositiveIntegerField()
    evaluated_at = models.DateTimeField()
    gray_weight = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20)
    action = models.CharField(max_length=20)
    canary_requests = models.FloatField(null=True)
    baseline_requests = models.FloatField(null=True)
    canary_success_rate = models.FloatField(null=True)
    baseline_success_rate = models.FloatField(null=True)
    canary_p95_ms = models.FloatField(null=True)
    baseline_p95_ms = models.FloatField(null=True)
    canary_error_ratio = models.FloatField(null=True)
    baseline_error_ratio = models.FloatField(null=True)
    canary_callback_fail_rate = models.FloatField(null=True)
    baseline_callback_fail_rate = models.FloatField(null=True)
    # LLM quality (sla/quality.py): mean eval score over the quality window; null when the traces carry none.
    canary_eval_score = models.FloatField(null=True)
    baseline_eval_score = models.FloatField(null=True)

    class Meta:
        ordering = ["release", "evaluated_at", "id"]
        indexes = [models.Index(fields=["release", "evaluated_at"]), models.Index(fields=["evaluated_at"])]
        constraints = [models.UniqueConstraint(fields=["release", "sequence"], name="sla_sample_one_per_evaluation")]
