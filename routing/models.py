"""Gray routing state: agent instances, the per-environment routing overrides, agent tokens.

The routing table itself is not stored: it is computed from the releases (live = stable, the canary release =
canary) plus the RoutingState of the service in the environment (revision, blue-green override, gray rules set
through routing services, versions blocked by hand or by the SLA gate). Writes live in routing/services.py.
"""
from django.db import models


class AgentStatus(models.TextChoices):
    STARTING = "starting", "Starting"
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded"
    DRAINING = "draining", "Draining"
    UNHEALTHY = "unhealthy", "Unhealthy"


class RoutingOverride(models.TextChoices):
    NONE = "", "Follow the release"
    CUT_OVER = "cut_over", "Blue-green: all new traffic to the canary"
    SWITCH_BACK = "switch_back", "Blue-green: all new traffic back to the stable"


class AgentInstance(models.Model):
    """One running agent process as it reported itself. Stale (computed) when its heartbeats stop."""

    service = models.ForeignKey("releases.AgentService", on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey("releases.Environment", on_delete=models.CASCADE, related_name="+")
    agent_id = models.CharField(max_length=200)
    model = models.CharField(max_length=200, blank=True)
    version = models.CharField(max_length=100)
    gray_tag = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=AgentStatus.choices, default=AgentStatus.HEALTHY)
    region = models.CharField(max_length=100, blank=True)
    registered_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["version", "agent_id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "environment", "agent_id"], name="agent_instance_unique_id"),
        ]
        indexes = [models.Index(fields=["service", "environment", "version"])]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.version} ({self.status})"


class RoutingState(models.Model):
    """What routing adds to the releases for one service in one environment; one row, created on first change."""

    service = models.ForeignKey("releases.AgentService", on_delete=models.CASCADE, related_name="+")
    environment = models.ForeignKey("releases.Environment", on_delete=models.CASCADE, related_name="+")
    revision = models.PositiveBigIntegerField(default=0, help_text="grows with every change of the table")
    override = models.CharField(max_length=20, choices=RoutingOverride.choices, blank=True, default="")
    # The override and the gray rules hold only for the canary release they were set for: a new canary starts clean.
    override_release = models.ForeignKey("releases.Release", null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+")
    gray_rules = models.JSONField(default=list, blank=True, help_text="list of rollgate_client GrayRule dicts")
    rules_release = models.ForeignKey("releases.Release", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    blocked_versions = models.JSONField(default=dict, blank=True,
                                        help_text='{"<tag>": {"reason": ..., "by": ..., "at": ISO-8601}}')
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "environment"], name="routing_state_unique"),
        ]


class AgentToken(models.Model):
    """A credential for agents and schedulers of one environment (optionally one service). Only its hash is kept."""

    name = models.CharField(max_length=100, help_text="who holds it, e.g. scheduler-prod-bj")
    environment = models.ForeignKey("releases.Environment", on_delete=models.CASCADE, related_name="+")
    service = models.ForeignKey("releases.AgentService", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+", help_text="empty: every service of the environment")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="first characters of the key, to recognise it in lists")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        scope = self.service.name if self.service_id else "*"
        return f"{self.name} ({scope}/{self.environment.name}, {self.prefix}…)"
