"""Pipeline runs of a release: stages (prepare, build, scan, push), their logs and artefacts.

Status changes happen only in pipelines/services.py: interactive ones under a row lock, worker ones by
compare-and-set. Models hold data and small derived properties.
"""

from django.db import models

from releases.models import Release
from releases.redaction import mask_url
from releases.sealed import SealedTextField


class PipelineStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # created, first stage queued
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting"  # for a scan override (High findings or an unverified scan)
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"  # labelled ci_failed; may be retried from the failed stage
    BLOCKED = "blocked", "Blocked"  # a Critical scan finding: never pushed, never retried


P = PipelineStatus
PIPELINE_TRANSITIONS: dict[str, frozenset[str]] = {
    P.PENDING: frozenset({P.RUNNING, P.FAILED}),
    P.RUNNING: frozenset({P.RUNNING, P.WAITING, P.SUCCEEDED, P.FAILED, P.BLOCKED}),
    P.WAITING: frozenset({P.RUNNING, P.SUCCEEDED, P.FAILED}),
    P.FAILED: frozenset({P.RUNNING}),
    P.SUCCEEDED: frozenset(),
    P.BLOCKED: frozenset(),
}
PIPELINE_TERMINAL = frozenset(s for s, nxt in PIPELINE_TRANSITIONS.items() if not nxt)


class StageName(models.TextChoices):
    PREPARE = "prepare", "Prepare"
    BUILD = "build", "Build"
    SCAN = "scan", "Scan"
    PUSH = "push", "Push"


# CI ends when the release is ready (image pushed); putting it on an environment is the deploy app's Rollout.
STAGE_ORDER = [StageName.PREPARE, StageName.BUILD, StageName.SCAN, StageName.PUSH]
BUILD_STAGES = STAGE_ORDER


class StageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for an override"  # scan found High findings or could not verify the image
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"  # scan found a Critical finding
    SKIPPED = "skipped", "Skipped"  # nothing to do: the release was made ready without it, or the image is reused


T = StageStatus
STAGE_TRANSITIONS: dict[str, frozenset[str]] = {
    T.PENDING: frozenset({T.RUNNING, T.SKIPPED, T.FAILED}),
    # running -> running is a take-over of a stage whose worker died (attempt + 1)
    # running -> skipped: the runner found nothing to do (build and push of a reused image)
    T.RUNNING: frozenset({T.RUNNING, T.PENDING, T.WAITING, T.SUCCEEDED, T.FAILED, T.BLOCKED, T.SKIPPED}),
    T.WAITING: frozenset({T.SUCCEEDED, T.FAILED}),
    T.FAILED: frozenset({T.PENDING}),  # retry from the failed stage
    T.SUCCEEDED: frozenset(),
    T.BLOCKED: frozenset(),
    T.SKIPPED: frozenset(),
}
STAGE_TERMINAL = frozenset(s for s, nxt in STAGE_TRANSITIONS.items() if not nxt)
STAGE_DONE = frozenset({T.SUCCEEDED, T.SKIPPED})


class Pipeline(models.Model):
    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="pipelines")
    status = models.CharField(max_length=20, choices=PipelineStatus.choices, default=PipelineStatus.PENDING)
    labels = models.JSONField(default=list, blank=True, help_text='e.g. ["ci_failed"]')
    failure_reason = models.CharField(max_length=2000, blank=True)
    reused_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="build once: the pipeline that built, scanned and pushed this version's image; this one reads "
                  "the digest back from the registry, skips build and push, and re-judges that scan for its "
                  "environment")
    scan_override_by = models.CharField(max_length=150, blank=True)
    scan_override_reason = models.TextField(blank=True)
    scan_override_findings = models.CharField(max_length=2000, blank=True,
                                              help_text="what the override accepted (High findings, unverified checks)")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"pipeline #{self.pk} of release #{self.release_id} ({self.status})"


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=20, choices=StageName.choices)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, choices=StageStatus.choices, default=StageStatus.PENDING)
    task_id = models.CharField(max_length=80, blank=True, help_text="Celery task id of the current attempt")
    attempt = models.PositiveSmallIntegerField(default=0, help_text="how many times a worker claimed it")
    failure_reason = models.CharField(max_length=2000, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="last sign of life of the worker")
    # The durable part of the queue (issue 13): when this stage's task was last sent, and how often the sweeper
    # sent it again because nobody claimed it (a message lost with the broker) or its worker stopped beating.
    queued_at = models.DateTimeField(null=True, blank=True, help_text="when its task was last queued")
    redrives = models.PositiveSmallIntegerField(default=0, help_text="times the sweeper queued it again")

    class Meta:
        ordering = ["pipeline", "position"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "name"], name="stage_unique_name")]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.name} of pipeline #{self.pipeline_id} ({self.status})"

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class StageLogLine(models.Model):
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="log_lines")
    time = models.DateTimeField(db_index=True)
    level = models.CharField(max_length=10, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()

    class Meta:
        ordering = ["id"]  # insertion order: lines of one stage come from one worker at a time


class ArtefactKind(models.TextChoices):
    SCAN_REPORT_JSON = "scan_report_json", "Scan report (JSON)"
    SCAN_REPORT_HTML = "scan_report_html", "Scan report (HTML)"
    SBOM = "sbom", "SBOM (CycloneDX JSON)"
    IMAGE_CHECK = "image_check", "Image check (JSON)"
    PUSH_RESULT = "push_result", "Push result (JSON)"


ARTEFACT_CONTENT_TYPES = {
    ArtefactKind.SCAN_REPORT_JSON: "application/json",
    ArtefactKind.SCAN_REPORT_HTML: "text/html; charset=utf-8",
    ArtefactKind.SBOM: "application/vnd.cyclonedx+json",
    ArtefactKind.IMAGE_CHECK: "application/json",
    ArtefactKind.PUSH_RESULT: "application/json",
}


class Artefact(models.Model):
    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="artefacts")
    kind = models.CharField(max_length=30, choices=ArtefactKind.choices)
    content = models.TextField()
    size_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stage", "id"]
        # A stage run twice (take-over, retry) replaces its artefact instead of piling up copies.
        constraints = [models.UniqueConstraint(fields=["stage", "kind"], name="artefact_unique_kind")]

    @property
    def content_type(self) -> str:
        return ARTEFACT_CONTENT_TYPES[self.kind]

    @property
    def filename(self) -> str:
        ext = "html" if self.kind == ArtefactKind.SCAN_REPORT_HTML else "json"
        return f"pipeline-{self.stage.pipeline_id}-{self.kind}.{ext}"


class WebhookFormat(models.TextChoices):
    GENERIC = "generic", "Generic JSON"
    FEISHU = "feishu", "Feishu"
    DINGTALK = "dingtalk", "DingTalk"
    SLACK = "slack", "Slack"


class WebhookEndpoint(models.Model):
    """Where stage failures are announced. The URL may embed a token: only `masked_url` is ever shown."""

    name = models.CharField(max_length=100, unique=True)
    # Both may carry a secret (a token in the URL, the signature secret): stored encrypted (releases.sealed).
    url = SealedTextField(help_text="at most 1000 characters (checked by the API)")
    format = models.CharField(max_length=20, choices=WebhookFormat.choices, default=WebhookFormat.GENERIC)
    signing_secret = SealedTextField(blank=True, help_text="Feishu/DingTalk signature secret")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

