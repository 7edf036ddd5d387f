"""Status vocabularies and the release state machine.

The transition map is the single source of truth for which status may follow which; services consult it and
turn an illegal edge into a TransitionNotAllowed error (HTTP 409).
"""
from django.db import models


class Role(models.TextChoices):
    DEVELOPER = "developer", "Developer"
    RELEASE_MANAGER = "release_manager", "Release manager"
    OPS = "ops", "Ops"
    QA = "qa", "QA"
    AUDITOR = "auditor", "Auditor"


class ReleaseStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # created, pipeline queued
    BUILDING = "building", "Building"  # pipeline running: build, scan, push
    CI_FAILED = "ci_failed", "CI failed"  # a pipeline stage failed; can be retried
    READY = "ready", "Ready"  # image pushed; waiting to be promoted (and approved in protected environments)
    DEPLOYING = "deploying", "Deploying"  # the deploy target is rolling the canary out
    GRAY = "gray", "Gray"  # canary serving gray_weight % of the traffic
    PAUSED = "paused", "Paused"  # ramp held by a person or by the SLA gate
    LIVE = "live", "Live"  # 100 %: the environment's stable version
    SUPERSEDED = "superseded", "Superseded"  # a newer release went live; restored if that one is rolled back
    ROLLED_BACK = "rolled_back", "Rolled back"
    REJECTED = "rejected", "Rejected"
    BLOCKED = "blocked", "Blocked"  # security scan or SLA gate blocked this version
    FAILED = "failed", "Failed"  # the deploy failed


S = ReleaseStatus

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.BUILDING, S.READY, S.CI_FAILED, S.BLOCKED, S.REJECTED}),
    S.BUILDING: frozenset({S.READY, S.CI_FAILED, S.BLOCKED, S.REJECTED}),
    S.CI_FAILED: frozenset({S.BUILDING, S.REJECTED}),
    S.READY: frozenset({S.DEPLOYING, S.GRAY, S.LIVE, S.REJECTED, S.BLOCKED}),
    S.DEPLOYING: frozenset({S.GRAY, S.LIVE, S.FAILED, S.ROLLED_BACK}),
    # gray -> gray is a weight change (5 -> 10 -> 30 -> 50); the audit row carries both weights.
    S.GRAY: frozenset({S.GRAY, S.PAUSED, S.LIVE, S.ROLLED_BACK, S.BLOCKED}),
    S.PAUSED: frozenset({S.GRAY, S.LIVE, S.ROLLED_BACK, S.BLOCKED}),
    S.LIVE: frozenset({S.SUPERSEDED, S.ROLLED_BACK}),
    # A superseded release comes back to live when its successor is rolled back.
    S.SUPERSEDED: frozenset({S.LIVE}),
    S.ROLLED_BACK: frozenset(),
    S.REJECTED: frozenset(),
    S.BLOCKED: frozenset(),
    S.FAILED: frozenset(),
}

TERMINAL_STATUSES = frozenset(s for s, nxt in ALLOWED_TRANSITIONS.items() if not nxt)
# Statuses in which a release holds the canary slot of its service in its environment.
CANARY_STATUSES = frozenset({S.DEPLOYING, S.GRAY, S.PAUSED})
# A release still on its way: a second release of the same version to the same environment would duplicate it.
OPEN_RELEASE_STATUSES = frozenset({S.PENDING, S.BUILDING, S.CI_FAILED, S.READY, S.DEPLOYING, S.GRAY, S.PAUSED})
# Statuses in which approvals may still be given or withdrawn by a rejection.
OPEN_FOR_APPROVAL = frozenset({S.PENDING, S.BUILDING, S.CI_FAILED, S.READY})
# What an approvals inbox lists: open releases whose build has not failed (a failed build waits for a fix, not for
# an approver).
AWAITING_APPROVAL = frozenset({S.PENDING, S.BUILDING, S.READY})


class ApprovalDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class VersionKind(models.TextChoices):
    RELEASE = "release", "Release (vX.Y.Z)"
    CANDIDATE = "candidate", "Staging candidate (vX.Y.Z-rcN)"
    GRAY = "gray", "Gray (vX.Y.Z-gray-NAME)"
    ROLLBACK = "rollback", "Rollback rebuild (vX.Y.Z-rN)"
    DEV = "dev", "Development (dev-latest)"


class GrayStrategy(models.TextChoices):
    WEIGHT = "weight", "By weight"
    TENANT = "tenant", "By tenant"
    REGION = "region", "By region"
    TAG = "tag", "By gray tag"


class DeployTargetKind(models.TextChoices):
    # "none": Rollgate records decisions and something else (GitOps, a person) applies them; promotion is immediate.
    NONE = "none", "None (record only)"
    KUBERNETES = "kubernetes", "Kubernetes"
    LOCAL = "local", "Local processes"
