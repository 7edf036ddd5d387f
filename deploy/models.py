"""Deploy records: versioned Helm-style values, the revision history per service and environment (like
`helm history`), and each environment's target credentials (encrypted at rest).

Writes happen only in pipelines/deploy_services.py; these models hold data and safe representations.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q

from releases.models import AgentService, Environment, Release, VersionedRecord


class VersionedText(VersionedRecord):
    """A values.yaml layer as its author wrote it, with a comment."""

    text = models.TextField(blank=True)
    comment = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True


class ServiceValues(VersionedText):
    """One version of a service's base values.yaml. Each edit adds a row; the highest number is current."""

    service = models.ForeignKey(AgentService, on_delete=models.PROTECT, related_name="values_versions")
    text = models.TextField(blank=True, help_text="values.yaml as the author wrote it")

    class Meta:
        db_table = "pipelines_servicevalues"  # adopted from the pipelines app, where these tables were created
        ordering = ["service", "-number"]
        constraints = [models.UniqueConstraint(fields=["service", "number"], name="service_values_unique_number")]

    def __str__(self) -> str:
        return f"{self.service.name} values.yaml #{self.number}"


class EnvironmentValues(VersionedText):
    """One version of values-<env>.yaml for a service in an environment, deep-merged over the base values."""

    service = models.ForeignKey(AgentService, on_delete=models.PROTECT, related_name="environment_values_versions")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="values_versions")

    class Meta:
        db_table = "pipelines_environmentvalues"  # adopted from the pipelines app, where these tables were created
        ordering = ["service", "environment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["service", "environment", "number"], name="env_values_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.service.name} values-{self.environment.name}.yaml #{self.number}"


class DeployRevisionStatus(models.TextChoices):
    DEPLOYED = "deployed", "Deployed"  # what runs now on its track
    FAILED = "failed", "Failed"  # its rollout did not complete
    SUPERSEDED = "superseded", "Superseded"  # a later revision replaced it
    ROLLED_BACK = "rolled_back", "Rolled back"  # taken away by a rollback (a canary cut, a live release undone)


# A revision is written once with DEPLOYED or FAILED; only a deployed one changes afterwards.
REVISION_TRANSITIONS: dict[str, frozenset[str]] = {
    DeployRevisionStatus.DEPLOYED: frozenset({DeployRevisionStatus.SUPERSEDED, DeployRevisionStatus.ROLLED_BACK}),
    DeployRevisionStatus.FAILED: frozenset(),
    DeployRevisionStatus.SUPERSEDED: frozenset(),
    DeployRevisionStatus.ROLLED_BACK: frozenset(),
}


class DeployRevision(models.Model):
    """One applied revision, like a line of `helm history`. ``revision_json`` is exactly what was applied
    (deploy.targets.base.Revision.to_json()), so rolling back to it re-applies the same manifests."""

    service = models.ForeignKey(AgentService, on_delete=models.PROTECT, related_name="deploy_revisions")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deploy_revisions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=DeployRevisionStatus.choices)
    track = models.CharField(max_length=10, default="stable", help_text="stable or canary")
    colour = models.CharField(max_length=10, blank=True, help_text="blue or green for blue-green environments")
    image_tag = models.CharField(max_length=128)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="deploy_revisions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    actor_name = models.CharField(max_length=150)
    description = models.CharField(max_length=500, blank=True, help_text='e.g. "rollback to 3"')
    rollback_of = models.PositiveIntegerField(null=True, blank=True, help_text="the revision this one re-applied")
    revision_json = models.TextField()
    digest = models.CharField(max_length=64)
    rollout_reason = models.CharField(max_length=60, blank=True, help_text="Complete, CrashLoopBackOff, ...")
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "pipelines_deployrevision"  # adopted from the pipelines app, where these tables were created
        ordering = ["service", "environment", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["service", "environment", "number"], name="deploy_revision_unique_number"),
            models.CheckConstraint(condition=Q(track__in=["stable", "canary"]), name="deploy_revision_track"),
        ]

    def __str__(self) -> str:
        return f"{self.service.name} in {self.environment.name} revision {self.number} ({self.status})"


class CredentialKind(models.TextChoices):
    KUBECONFIG = "kubeconfig", "kubeconfig (stored encrypted)"
    TOKEN = "token", "service-account token, host and CA (stored encrypted)"
    KUBECONFIG_FILE = "kubeconfig_file", "kubeconfig read from a secret file"
    TOKEN_FILE = "token_file", "service-account token read from a secret file"


class TargetCredential(models.Model):
    """How an environment's deploy target authenticates. The secret is Fernet-encrypted (``ciphertext``) or lives
    in a file the worker reads (``secret_path``); neither the secret nor the ciphertext is ever rendered."""

    environment = models.OneToOneField(Environment, on_delete=models.PROTECT, related_name="target_credential")
    kind = models.CharField(max_length=20, choices=CredentialKind.choices)
    host = models.CharField(max_length=500, blank=True, help_text="API server URL (token kinds)")
    context = models.CharField(max_length=200, blank=True, help_text="kubeconfig context (kubeconfig kinds)")
    ciphertext = models.BinaryField(editable=False, default=bytes)
    secret_path = models.CharField(max_length=500, blank=True, help_text="file holding the kubeconfig or token")
    ca_path = models.CharField(max_length=500, blank=True, help_text="CA bundle file (token_file)")
    updated_by_name = models.CharField(max_length=150)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "pipelines_targetcredential"  # adopted from the pipelines app, where these tables were created

    def __str__(self) -> str:
        return f"{self.environment.name} credentials ({self.kind})"

    def __repr__(self) -> str:
        return f"<TargetCredential environment={self.environment_id} kind={self.kind}>"


class RolloutStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # created when the release went deploying; its task is queued
    RUNNING = "running", "Running"  # a worker holds it (attempt, heartbeat)
    SUCCEEDED = "succeeded", "Succeeded"  # the version runs; the release got its first traffic
    FAILED = "failed", "Failed"  # the version did not come up; nothing of it is left running
    CANCELLED = "cancelled", "Cancelled"  # the release was rolled back while deploying; its canary is gone


ROLLOUT_TRANSITIONS: dict[str, frozenset[str]] = {
    RolloutStatus.PENDING: frozenset({RolloutStatus.RUNNING, RolloutStatus.FAILED, RolloutStatus.CANCELLED}),
    # running -> running is a take-over of a rollout whose worker stopped beating (attempt + 1);
    # running -> pending hands it back after a transient error, for the retried task to claim.
    RolloutStatus.RUNNING: frozenset({RolloutStatus.RUNNING, RolloutStatus.PENDING, RolloutStatus.SUCCEEDED,
                                      RolloutStatus.FAILED, RolloutStatus.CANCELLED}),
    RolloutStatus.SUCCEEDED: frozenset(),
    RolloutStatus.FAILED: frozenset(),
    RolloutStatus.CANCELLED: frozenset(),
}
ROLLOUT_TERMINAL = frozenset(s for s, nxt in ROLLOUT_TRANSITIONS.items() if not nxt)


class Rollout(models.Model):
    """Putting one release's version on its environment's target: one row per release that went deploying.

    Claimed by a worker like a pipeline stage (``attempt`` is the fencing token, ``heartbeat_at`` the sign of
    life). ``queued_at`` and ``redrives`` let the sweeper find a rollout whose message was lost.

    Traffic changes after the rollout (a gray weight, going live, rolling back, cancelling) are numbered as they
    are queued: ``traffic_seq`` is the newest, ``traffic_applied_seq`` the newest the target has applied (an older
    weight that arrives late is never applied). ``traffic_task``/``traffic_args`` keep the newest change as it was
    queued, so the sweeper can send it again when the target never got it (deploy/sweeper.py)."""

    release = models.OneToOneField(Release, on_delete=models.CASCADE, related_name="rollout")
    status = models.CharField(max_length=20, choices=RolloutStatus.choices, default=RolloutStatus.PENDING)
    attempt = models.PositiveSmallIntegerField(default=0, help_text="how many times a worker claimed it")
    task_id = models.CharField(max_length=80, blank=True)
    reason = models.CharField(max_length=1000, blank=True)
    log = models.TextField(blank=True, help_text="what the target reported, one line each")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when its rollout task was last queued")
    redrives = models.PositiveSmallIntegerField(default=0, help_text="times the sweeper queued it again")
    traffic_seq = models.PositiveIntegerField(default=0, help_text="number of the newest traffic change queued")
    traffic_applied_seq = models.PositiveIntegerField(default=0, help_text="newest traffic change the target applied")
    traffic_task = models.CharField(max_length=40, blank=True, help_text="task of the newest traffic change")
    traffic_args = models.JSONField(default=list, blank=True, help_text="its arguments, change number last")
    traffic_queued_at = models.DateTimeField(null=True, blank=True)
    traffic_redrives = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="rollout_status_heartbeat")]

    def __str__(self) -> str:
        return f"rollout of release #{self.release_id} ({self.status})"

