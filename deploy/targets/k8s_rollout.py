"""Watching a Deployment rollout, and explaining a failed one the way kubectl would.

Success is what ``kubectl rollout status`` checks: the controller has observed the latest
generation, and updated, available and total replicas all equal the desired count. Failure is
reported as soon as it is certain (ProgressDeadlineExceeded, CrashLoopBackOff, ImagePullBackOff,
a container that cannot be configured, repeated readiness-probe failures) rather than at the
timeout, with the failing pods' events and last log lines (``kubectl describe`` / ``kubectl logs``).
"""

from __future__ import annotations

import time
from typing import Callable

from .base import LogFn, Revision, RolloutResult, TargetError
from .k8s_api import KubernetesApi
from .manifests import COLOUR_LABEL

# Waiting reasons that will not fix themselves without a new revision.
FATAL_WAITING_REASONS = {
    "CrashLoopBackOff": "CrashLoopBackOff",
    "ImagePullBackOff": "ImagePullBackOff",
    "ErrImageNeverPull": "ImagePullBackOff",
    "InvalidImageName": "ImagePullBackOff",
    "CreateContainerConfigError": "CreateContainerConfigError",
    "CreateContainerError": "CreateContainerError",
}
MAX_PODS_DESCRIBED = 3


class RolloutWatcher:
    def __init__(
        self,
        api: KubernetesApi,
        log: LogFn,
        *,
        poll_interval_seconds: float,
        log_tail_lines: int,
        probe_failure_threshold: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.api = api
        self.log = log
        self.poll_interval = poll_interval_seconds
        self.log_tail_lines = log_tail_lines
        self.probe_failure_threshold = probe_failure_threshold
        self.clock = clock
        self.sleep = sleep

    def watch(self, revision: Revision, timeout_seconds: float) -> RolloutResult:
        namespace, name = revision.namespace, revision.workload_name
        deadline = self.clock() + timeout_seconds
        last_progress = None
        self.log(f"watching rollout of Deployment {namespace}/{name} (image {revision.image_tag}, timeout {timeout_seconds:g}s)")
        while True:
            deployment = self.api.read("Deployment", namespace, name)
            if deployment is None:
                return self._finish(RolloutResult(False, "NotFound", f"Deployment {namespace}/{name} does not exist"))
            spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
            desired = spec.get("replicas", 1)
            counts = dict(
                desired_replicas=desired,
                updated_replicas=status.get("updatedReplicas", 0),
                available_replicas=status.get("availableReplicas", 0),
            )
            observed = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
            progress = (observed, counts["updated_replicas"], counts["available_replicas"], status.get("replicas", 0))
            if progress != last_progress:
                self.log(f"{name}: {counts['updated_replicas']}/{desired} updated, {counts['available_replicas']}/{desired} available"
                         + ("" if observed else " (waiting for the controller to observe the new generation)"))
                last_progress = progress
            if observed:
                if (counts["updated_replicas"] == desired and counts["available_replicas"] == desired
                        and status.get("replicas", 0) == desired):
                    return self._finish(RolloutResult(True, "Complete", f"Deployment {namespace}/{name} rolled out {desired} replica(s)", **counts))
                progressing = _condition(status, "Progressing")
                if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
                    return self._fail(revision, "ProgressDeadlineExceeded", progressing.get("message") or "progress deadline exceeded", counts)
                pods = self.api.list_pods(namespace, _selector(deployment))
                verdict = self._pod_failure(namespace, pods)
                if verdict is not None:
                    return self._fail(revision, verdict[0], verdict[1], counts)
            if self.clock() >= deadline:
                return self._fail(revision, "Timeout", f"rollout did not complete within {timeout_seconds:g}s", counts)
            self.sleep(min(self.poll_interval, max(deadline - self.clock(), 0)))

    def _pod_failure(self, namespace: str, pods: list[dict]) -> tuple[str, str] | None:
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                reason = waiting.get("reason")
                if reason in FATAL_WAITING_REASONS:
                    detail = waiting.get("message") or reason
                    return FATAL_WAITING_REASONS[reason], f"pod {pod_name} container {container['name']}: {detail}"
            if _is_running_unready(pod):
                for event in self.api.list_events(namespace, involved_name=pod_name):
                    if event.get("reason") == "Unhealthy" and (event.get("count") or 1) >= self.probe_failure_threshold:
                        return "ProbeFailing", f"pod {pod_name}: {event.get('message')} ({event.get('count')} times)"
        return None

    def _fail(self, revision: Revision, reason: str, message: str, counts: dict) -> RolloutResult:
        diagnostics = tuple(self.describe_failing_pods(revision))
        return self._finish(RolloutResult(False, reason, message, diagnostics=diagnostics, **counts))

    def _finish(self, result: RolloutResult) -> RolloutResult:
        self.log(f"rollout {'complete' if result.ok else 'FAILED'}: {result.reason}: {result.message}")
        for line in result.diagnostics:
            self.log(line)
        return result

    def describe_failing_pods(self, revision: Revision) -> list[str]:
        """Events and last log lines of the revision's pods that are not ready."""
        namespace = revision.namespace
        deployment = self.api.read("Deployment", namespace, revision.workload_name)
        if deployment is None:
            return []
        pods = [pod for pod in self.api.list_pods(namespace, _selector(deployment)) if not _is_ready(pod)]
        lines: list[str] = []
        for pod in pods[:MAX_PODS_DESCRIBED]:
            pod_name = pod["metadata"]["name"]
            status = pod.get("status") or {}
            lines.append(f"pod {pod_name}: phase {status.get('phase', 'Unknown')}")
            for container in status.get("containerStatuses") or []:
                state = container.get("state") or {}
                state_name = next(iter(state), "unknown")
                reason = (state.get(state_name) or {}).get("reason", "")
                lines.append(f"  container {container['name']}: {state_name} {reason} (restarts {container.get('restartCount', 0)})".rstrip())
            events = sorted(self.api.list_events(namespace, involved_name=pod_name), key=lambda e: e.get("lastTimestamp") or "")
            if events:
                lines.append("  events:")
            for event in events[-10:]:
                lines.append(f"    {event.get('type', '')} {event.get('reason', '')} (x{event.get('count') or 1}): {event.get('message', '')}")
            for container in status.get("containerStatuses") or []:
                lines.extend(self._container_log(namespace, pod_name, container))
        if len(pods) > MAX_PODS_DESCRIBED:
            lines.append(f"... and {len(pods) - MAX_PODS_DESCRIBED} more pod(s) not ready")
        return lines

    def _container_log(self, namespace: str, pod_name: str, container: dict) -> list[str]:
        # A crash-looping container is waiting: its useful output belongs to the previous instance.
        previous = container.get("restartCount", 0) > 0
        try:
            log_lines = self.api.pod_log(namespace, pod_name, container=container["name"],
                                         tail_lines=self.log_tail_lines, previous=previous)
        except TargetError as exc:
            return [f"  logs of {container['name']}: unavailable ({exc})"]
        label = f"last {self.log_tail_lines} log lines of {container['name']}" + (" (previous instance)" if previous else "")
        if not log_lines:
            return [f"  {label}: (empty)"]
        return [f"  {label}:"] + [f"    | {line}" for line in log_lines]


def _condition(status: dict, kind: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)


def _selector(deployment: dict) -> str:
    """The pods of the Deployment's current template: its selector plus the version label."""
    labels = dict((deployment["spec"].get("selector") or {}).get("matchLabels") or {})
    template_labels = ((deployment["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
    for key in ("version", COLOUR_LABEL):
        if key in template_labels:
            labels[key] = template_labels[key]
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def _is_running_unready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and not _is_ready(pod)
