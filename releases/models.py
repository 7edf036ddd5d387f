"""The release domain: services, environments, versions, releases, gray phases, approvals and the audit trail.

Status changes happen only in releases/services.py; models hold data and simple derived properties.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from releases.choices import (
    AWAITING_APPROVAL,
    CANARY_STATUSES,
    ApprovalDecision,
    DeployTargetKind,
    GrayStrategy,
    ReleaseStatus,
    Role,
    VersionKind,
)


class VersionedRecord(models.Model):
    """A document kept as numbered versions (values.yaml layers, SLA policies): a change adds the next number,
    rows are never edited, and each names who wrote it."""

    number = models.PositiveIntegerField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    author_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class AgentService(models.Model):
    name = models.SlugField(max_length=63, unique=True, help_text="e.g. agent-infer")
    description = models.CharField(max_length=500, blank=True)
    image_repository = models.CharField(
        max_length=255, help_text="e.g. registry.example.com/agent/agent-core (the tag comes from the version)"
    )
    source_repository = models.CharField(max_length=500, blank=True, help_text="git URL of the service's source")
    source_path = models.CharField(max_length=500, blank=True, help_text="build context on the worker, if local")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def image_for(self, tag: str) -> str:
        return f"{self.image_repository}:{tag}"


class Environment(models.Model):
    name = models.SlugField(max_length=30, unique=True, help_text="dev, test, staging, prod")
    namespace = models.CharField(max_length=63, help_text="Kubernetes namespace, agent-<env> by convention")
    position = models.PositiveSmallIntegerField(help_text="place in the promotion path, dev first")
    protected = models.BooleanField(default=False, help_text="promotion needs the required approvals")
    required_approvals = models.JSONField(
        default=dict, blank=True, help_text='approvals per role before promotion, e.g. {"release_manager": 1, "qa": 1}'
    )
    gray_step_approvals = models.JSONField(
        default=dict, blank=True,
        help_text='approvals per role before the ramp moves to a rung, e.g. {"50": {"qa": 1}, "100": '
                  '{"release_manager": 1}}; the ramp (a person or the SLA gate) waits at the rung below until given',
    )
    freeze_windows = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"start": ISO-8601, "end": ISO-8601, "reason": "..."}] or weekly '
        '[{"weekdays": [4], "from": "18:00", "to": "23:59", "reason": "..."}] in UTC',
    )
    auto_rollback = models.BooleanField(default=True, help_text="roll back automatically when a rollout fails")
    deploy_target = models.CharField(max_length=30, choices=DeployTargetKind.choices, default=DeployTargetKind.NONE)
    target_settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.name


class GrayPhase(models.Model):
    """One rung of an environment's gray ladder (5 -> 10 -> 30 -> 50 -> 100 by default)."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="gray_phases")
    position = models.PositiveSmallIntegerField()
    weight = models.PositiveSmallIntegerField(help_text="percent of traffic on the canary")

    class Meta:
        ordering = ["environment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "position"], name="gray_phase_unique_position"),
            models.CheckConstraint(condition=Q(weight__gte=1, weight__lte=100), name="gray_phase_weight_1_100"),
        ]

    def __str__(self) -> str:
        return f"{self.environment.name} phase {self.position}: {self.weight}%"


class Version(models.Model):
    service = models.ForeignKey(AgentService, on_delete=models.PROTECT, related_name="versions")
    tag = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=VersionKind.choices)
    commit_sha = models.CharField(max_length=40)
    branch = models.CharField(max_length=200, blank=True)
    image_reference = models.CharField(max_length=400, blank=True)
    image_digest = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One tag binds exactly one commit; the moving dev-latest tag gets a row per commit instead.
            models.UniqueConstraint(
                fields=["service", "tag"], condition=~Q(tag="dev-latest"), name="version_tag_binds_one_commit"
            ),
            models.UniqueConstraint(fields=["service", "tag", "commit_sha"], name="version_unique_tag_commit"),
        ]

    def __str__(self) -> str:
        return f"{self.service.name}:{self.tag}"


class Release(models.Model):
    service = models.ForeignKey(AgentService, on_delete=models.PROTECT, related_name="releases")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="releases")
    version = models.ForeignKey(Version, on_delete=models.PROTECT, related_name="releases")
    status = models.CharField(max_length=20, choices=ReleaseStatus.choices, default=ReleaseStatus.PENDING)
    status_reason = models.CharField(max_length=1000, blank=True)
    gray_weight = models.PositiveSmallIntegerField(default=0)
    rollout_weight = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="while deploying: the weight the canary gets once its rollout succeeds"
    )
    gray_strategy = models.CharField(max_length=10, choices=GrayStrategy.choices, default=GrayStrategy.WEIGHT)
    gray_rules = models.JSONField(default=dict, blank=True, help_text="tenants / regions / gray tag for the canary")
    previous_release = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="the live release this one replaces; restored on rollback",
    )
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(
        max_length=200, blank=True, help_text="the Idempotency-Key header of the request that created it, if any")
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Lists are newest first by (created_at, id), alone or after one filter: one index per common filter so
        # a page (and a cursor deep into the list) reads its rows in order instead of sorting the table.
        indexes = [
            models.Index(fields=["service", "environment", "status"]),
            models.Index(fields=["created_at", "id"], name="release_newest"),
            models.Index(fields=["environment", "created_at", "id"], name="release_env_newest"),
            models.Index(fields=["status", "created_at", "id"], name="release_status_newest"),
            models.Index(fields=["service", "created_at", "id"], name="release_service_newest"),
            # "is this the newest release of its pair?" (fleet status filter and header counts): one probe
            models.Index(fields=["service", "environment", "id"], name="release_pair_newest"),
            # The approvals inbox and its nav badge: the few releases still open, not the whole history.
            models.Index(fields=["created_at", "id"], name="release_awaiting_approval",
                         condition=Q(status__in=sorted(AWAITING_APPROVAL))),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment"], condition=Q(status=ReleaseStatus.LIVE), name="one_live_release"
            ),
            models.UniqueConstraint(
                fields=["service", "environment"], condition=Q(status__in=sorted(CANARY_STATUSES)),
                name="one_canary_release",
            ),
            models.CheckConstraint(condition=Q(gray_weight__lte=100), name="release_gray_weight_max_100"),
            # A retried request with the same Idempotency-Key finds the release the first one made.
            models.UniqueConstraint(fields=["started_by", "idempotency_key"], condition=~Q(idempotency_key=""),
                                    name="release_idempotency_key_per_user"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.service.name} {self.version.tag} -> {self.environment.name} ({self.status})"

    @property
    def previous_version(self):
        return self.previous_release.version if self.previous_release_id else None


class Approval(models.Model):
    """One person's decision on a release, before promotion (step_weight 0) or before the ramp moves to a rung
    (step_weight = that rung's weight). It keeps the evidence the person was shown; when later evidence changes
    the picture it is marked stale (with the reason) and no longer counts: it must be given again."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20, choices=Role.choices, help_text="the role the approval counts for")
    decision = models.CharField(max_length=10, choices=ApprovalDecision.choices)
    comment = models.TextField(blank=True)
    step_weight = models.PositiveSmallIntegerField(
        default=0, help_text="0: before promotion; otherwise the gray rung (percent) this approval lets the ramp reach")
    evidence = models.JSONField(default=dict, blank=True,
                                help_text="what the approver was shown: scan, SLA snapshot of the previous "
                                          "environment, values diff (releases.selectors.approval_evidence)")
    evidence_digest = models.CharField(max_length=64, blank=True)
    stale_at = models.DateTimeField(null=True, blank=True)
    stale_reason = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["release", "user", "step_weight"],
                                               condition=Q(stale_at__isnull=True), name="one_decision_per_user_step")]

    @property
    def stale(self) -> bool:
        return self.stale_at is not None


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("audit events are append-only")

    def delete(self):
        raise TypeError("audit events are append-only")


class AuditEvent(models.Model):
    """Append-only record of every change users can see. PostgreSQL also refuses UPDATE/DELETE by trigger."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_name = models.CharField(max_length=150, help_text="username, or the system component (sla-gate, pipeline)")
    action = models.CharField(max_length=50)
    object_type = models.CharField(max_length=30)
    object_id = models.CharField(max_length=40)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events")
    service = models.ForeignKey(AgentService, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    environment = models.ForeignKey(Environment, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    from_state = models.CharField(max_length=30, blank=True)
    to_state = models.CharField(max_length=30, blank=True)
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Set by audit_record before the insert (not auto_now_add): the hash covers it.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Tamper evidence (releases/audit_chain.py): SHA-256 over this row's content and the previous row's hash.
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    row_hash = models.CharField(max_length=64, blank=True, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The audit page, API and export read newest first by (created_at, id), often after one filter.
        indexes = [
            models.Index(fields=["created_at", "id"], name="audit_newest"),
            models.Index(fields=["action", "created_at", "id"], name="audit_action_newest"),
            models.Index(fields=["actor_name", "created_at", "id"], name="audit_actor_newest"),
            models.Index(fields=["service", "created_at", "id"], name="audit_service_newest"),
            models.Index(fields=["environment", "created_at", "id"], name="audit_env_newest"),
            models.Index(fields=["release", "created_at", "id"], name="audit_release_newest"),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("audit events are append-only")
