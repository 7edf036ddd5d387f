"""The deploy-target interface the pipeline's deploy stage talks to, and the data it exchanges.

A target turns a *revision* (the exact set of manifests rendered for one service in one
environment) into running workloads, reports on the rollout, and moves traffic for gray and
blue-green releases. ``kubernetes`` is one implementation; a ``local`` runtime is another.
Everything here is plain data so the lead can store it (revisions as JSON) and test it without Django.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Literal

LogFn = Callable[[str], None]

TRACK_STABLE = "stable"
TRACK_CANARY = "canary"
COLOURS = ("blue", "green")

Track = Literal["stable", "canary"]
Colour = Literal["blue", "green"]


class TargetError(Exception):
    """The target could not do what it was asked; the message is safe to show (no credentials)."""


@dataclass(frozen=True)
class Revision:
    """One deployable revision: the manifests to apply, in order, plus what they describe.

    ``manifests`` is exactly what gets applied, so storing ``to_json()`` and re-applying
    ``Revision.from_json(...)`` reproduces the revision ("rollback to N").
    """

    service: str
    env: str
    namespace: str
    image_tag: str
    track: Track = TRACK_STABLE
    colour: Colour | None = None
    manifests: tuple[dict, ...] = ()

    @property
    def workload_name(self) -> str:
        """Name of the Deployment this revision rolls out."""
        for manifest in self.manifests:
            if manifest.get("kind") == "Deployment":
                return manifest["metadata"]["name"]
        raise TargetError(f"revision for {self.service} in {self.env} has no Deployment")

    def to_json(self) -> str:
        return json.dumps(
            {
                "service": self.service,
                "env": self.env,
                "namespace": self.namespace,
                "image_tag": self.image_tag,
                "track": self.track,
                "colour": self.colour,
                "manifests": list(self.manifests),
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> "Revision":
        data = json.loads(text)
        return cls(
            service=data["service"],
            env=data["env"],
            namespace=data["namespace"],
            image_tag=data["image_tag"],
            track=data.get("track", TRACK_STABLE),
            colour=data.get("colour"),
            manifests=tuple(data["manifests"]),
        )

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON; equal digests mean identical revisions."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


@dataclass(frozen=True)
class ObjectChange:
    kind: str
    name: str
    action: Literal["created", "updated", "unchanged", "skipped"]


@dataclass(frozen=True)
class ApplyResult:
    changes: tuple[ObjectChange, ...]

    @property
    def changed(self) -> bool:
        return any(change.action in ("created", "updated") for change in self.changes)


@dataclass(frozen=True)
class RolloutResult:
    """Outcome of watching a rollout. ``reason`` is "Complete" on success, otherwise one of
    ProgressDeadlineExceeded, CrashLoopBackOff, ImagePullBackOff, ProbeFailing, Timeout, NotFound."""

    ok: bool
    reason: str
    message: str
    desired_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    # What `kubectl describe pod` events and `kubectl logs --tail` would show for failing pods.
    diagnostics: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrafficResult:
    mode: Literal["istio", "replica-ratio"]
    requested_weight: int
    effective_weight: float
    header_match: dict | None = None
    stable_replicas: int | None = None
    canary_replicas: int | None = None


@dataclass(frozen=True)
class BlueGreenSwitch:
    active: Colour
    previous: Colour | None
    # When the now idle colour may be scaled down; the caller schedules scale_down_idle() then.
    idle_scale_down_due_at: datetime | None = None


@dataclass(frozen=True)
class ScaleDownResult:
    colour: Colour | None
    scaled: bool
    reason: str


class DeployTarget(abc.ABC):
    """What the deploy stage needs from any runtime. Implementations send every log line to ``log``."""

    @abc.abstractmethod
    def apply(self, revision: Revision) -> ApplyResult:
        """Create or update the revision's objects; applying the same revision twice changes nothing."""

    @abc.abstractmethod
    def watch_rollout(self, revision: Revision, *, timeout_seconds: float | None = None) -> RolloutResult:
        """Wait for the revision's workload to be fully rolled out, or report why it is not."""

    @abc.abstractmethod
    def set_traffic(
        self,
        service: str,
        env: str,
        *,
        stable_tag: str,
        canary_tag: str,
        weight: int,
        header_match: dict[str, str] | None = None,
    ) -> TrafficResult:
        """Send ``weight`` percent (0..100) of traffic to the canary, and all requests whose headers
        match ``header_match`` (e.g. {"x-gray-tag": "gray-phase-A"}) when the runtime can route by header."""

    @abc.abstractmethod
    def switch_blue_green(self, service: str, env: str, *, to_colour: Colour) -> BlueGreenSwitch:
        """Point the service at ``to_colour`` in one step (switching back is the same call)."""

    @abc.abstractmethod
    def scale_down_idle(self, service: str, env: str) -> ScaleDownResult:
        """Scale the colour that receives no traffic down to zero replicas."""


@dataclass
class DeployOutcome:
    status: Literal["deployed", "failed", "rolled_back"]
    rollout: RolloutResult
    rollback_rollout: RolloutResult | None = None
    apply_result: ApplyResult | None = None
    notes: list[str] = field(default_factory=list)


def deploy_revision(
    target: DeployTarget,
    revision: Revision,
    *,
    last_good: Revision | None,
    auto_rollback: bool,
    log: LogFn,
    timeout_seconds: float | None = None,
) -> DeployOutcome:
    """Apply a revision and watch it; on failure re-apply ``last_good`` when the environment allows.

    The caller records the history rows: "deployed", or "failed" plus a new "rollback to N" revision.
    """
    applied = target.apply(revision)
    rollout = target.watch_rollout(revision, timeout_seconds=timeout_seconds)
    if rollout.ok:
        return DeployOutcome("deployed", rollout, apply_result=applied)
    log(f"rollout of {revision.service}:{revision.image_tag} in {revision.env} failed: {rollout.reason}: {rollout.message}")
    if not auto_rollback or last_good is None:
        reason = "auto-rollback is off for this environment" if not auto_rollback else "there is no earlier good revision"
        log(f"not rolling back: {reason}")
        return DeployOutcome("failed", rollout, apply_result=applied, notes=[reason])
    log(f"rolling back {revision.service} in {revision.env} to image {last_good.image_tag}")
    target.apply(last_good)
    rollback_rollout = target.watch_rollout(last_good, timeout_seconds=timeout_seconds)
    if not rollback_rollout.ok:
        log(f"rollback did not complete either: {rollback_rollout.reason}: {rollback_rollout.message}")
        return DeployOutcome("failed", rollout, rollback_rollout, applied, ["rollback failed"])
    return DeployOutcome("rolled_back", rollout, rollback_rollout, applied)
