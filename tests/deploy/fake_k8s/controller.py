"""The fake cluster's Deployment controller and kubelet, in one small loop.

Every tick it looks at each Deployment, creates pods for the current pod template one at a time
(maxSurge 1, maxUnavailable 0: old pods stay until new ones are ready), marks them ready, removes
old pods, and writes ``status`` (observedGeneration, replicas, updated/ready/available replicas,
Available and Progressing conditions) the way the real controller reports it.

Pods whose image tag was registered with ``FakeKubernetes.fail_image`` never become ready:

* ``crashloop``  container waiting in CrashLoopBackOff, restarts counting up, BackOff events,
                  and the crashed container's log available with ``previous=true``;
* ``imagepull``  waiting in ImagePullBackOff with Failed/BackOff events;
* ``probe``      running but not ready, Unhealthy "Readiness probe failed" events;
* ``pending``    never scheduled (FailedScheduling), so only the progress deadline ends it.

Any rollout that has not completed within ``progressDeadlineSeconds * deadline_scale`` seconds
gets the Progressing=False/ProgressDeadlineExceeded condition.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeKubernetes

DEFAULT_CRASH_LOG = [
    "INFO agent-core starting",
    "INFO loading model config from MODEL_CONFIG",
    "Traceback (most recent call last):",
    '  File "/app/agent/main.py", line 41, in <module>',
    "KeyError: 'MODEL_ENDPOINT'",
]
MAX_EVENTS_PER_POD = 10


class FakeController:
    def __init__(self, fake: "FakeKubernetes", *, tick_seconds: float, deadline_scale: float):
        self.fake = fake
        self.tick_seconds = tick_seconds
        self.deadline_scale = deadline_scale
        self.failures: dict[str, tuple[str, list[str] | None]] = {}
        # (namespace, deployment) -> (generation, monotonic start): the progress deadline restarts
        # with every new generation, as in the real controller.
        self._rollout_started: dict[tuple[str, str], tuple[int, float]] = {}
        self._pod_serial = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-k8s-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            with self.fake.lock:
                for deployment in self.fake.list("deployments"):
                    self._reconcile(deployment)

    # -- reconciliation ---------------------------------------------------------------------
    def _failure_for(self, template: dict) -> tuple[str, list[str] | None] | None:
        for container in template["spec"]["containers"]:
            tag = container["image"].rsplit(":", 1)[-1]
            if tag in self.failures:
                return self.failures[tag]
        return None

    def _reconcile(self, deployment: dict) -> None:
        fake = self.fake
        meta, spec = deployment["metadata"], deployment["spec"]
        namespace, name = meta["namespace"], meta["name"]
        template = spec["template"]
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        desired = spec.get("replicas", 1)
        generation = meta.get("generation", 1)
        seen_generation, started = self._rollout_started.get((namespace, name), (None, 0.0))
        if seen_generation != generation:
            started = time.monotonic()
            self._rollout_started[(namespace, name)] = (generation, started)
        pods = [p for p in fake.list("pods", namespace)
                if (p["metadata"].get("annotations") or {}).get("fake-k8s/deployment") == name]
        new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == template_hash]
        old = [p for p in pods if p not in new]
        failure = self._failure_for(template)

        for pod in new:
            self._advance_pod(pod, failure)
        new = [fake.get("pods", namespace, p["metadata"]["name"]) for p in new]
        ready_new = [p for p in new if _ready(p)]

        if len(new) > desired:
            by_readiness = sorted(new, key=_ready)  # unready pods go first
            for pod in by_readiness[: len(new) - desired]:
                fake.delete_object("pods", namespace, pod["metadata"]["name"])
            new = by_readiness[len(new) - desired:]
            ready_new = [p for p in new if _ready(p)]
        elif len(new) < desired and len(ready_new) == len(new):
            new.append(self._create_pod(deployment, template_hash))
        # maxUnavailable 0: an old pod goes only when a new ready one replaces it.
        surplus = len(old) + len(ready_new) - desired
        for pod in old[: max(surplus, 0)]:
            fake.delete_object("pods", namespace, pod["metadata"]["name"])
        if desired == 0:
            for pod in old:
                fake.delete_object("pods", namespace, pod["metadata"]["name"])
        remaining_old = [p for p in old if fake.get("pods", namespace, p["metadata"]["name"])]
        ready_old = [p for p in remaining_old if _ready(p)]

        available = len(ready_new) + len(ready_old)
        complete = len(new) == desired and len(ready_new) == desired and not remaining_old
        deadline = spec.get("progressDeadlineSeconds", 600) * self.deadline_scale
        if complete:
            progressing = ("True", "NewReplicaSetAvailable", f'ReplicaSet "{name}-{template_hash}" has successfully progressed.')
        elif time.monotonic() - started > deadline:
            progressing = ("False", "ProgressDeadlineExceeded", f'ReplicaSet "{name}-{template_hash}" has timed out progressing.')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}-{template_hash}" is progressing.')
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(new) + len(remaining_old),
            "updatedReplicas": len(new),
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(desired - available, 0),
            "conditions": [
                _condition("Available", "True" if available >= desired else "False",
                           "MinimumReplicasAvailable" if available >= desired else "MinimumReplicasUnavailable",
                           "Deployment has minimum availability." if available >= desired
                           else "Deployment does not have minimum availability."),
                _condition("Progressing", *progressing),
            ],
        }
        if not status["readyReplicas"]:
            del status["readyReplicas"]
        current = fake.get("deployments", namespace, name)
        if current is None:
            return
        previous = current.get("status") or {}
        if _without_times(previous) != _without_times(status):
            current["status"] = status
            current["metadata"]["resourceVersion"] = fake.next_resource_version()
            fake.store("deployments", current)

    def _create_pod(self, deployment: dict, template_hash: str) -> dict:
        fake = self.fake
        self._pod_serial += 1
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        template = copy.deepcopy(deployment["spec"]["template"])
        pod_name = f"{name}-{template_hash[:8]}-{self._pod_serial:05x}"
        labels = {**template["metadata"].get("labels", {}), "pod-template-hash": template_hash}
        containers = template["spec"]["containers"]
        pod = {
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {"fake-k8s/deployment": name},
            },
            "spec": template["spec"],
            "status": {
                "phase": "Pending",
                "conditions": [_condition("Ready", "False", "ContainersNotReady", "containers with unready status")],
                "containerStatuses": [
                    {"name": c["name"], "image": c["image"], "imageID": "", "ready": False, "restartCount": 0,
                     "state": {"waiting": {"reason": "ContainerCreating"}}}
                    for c in containers
                ],
            },
        }
        return fake._create("pods", namespace, pod)

    def _advance_pod(self, pod: dict, failure: tuple[str, list[str] | None] | None) -> None:
        fake = self.fake
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        status = pod["status"]
        statuses = status["containerStatuses"]
        container = statuses[0]
        mode, log_lines = failure if failure else ("ok", None)
        if mode == "ok":
            if _ready(pod):
                return
            status["phase"] = "Running"
            status["conditions"] = [_condition("Ready", "True", "", "")]
            for item in statuses:
                item.update(ready=True, started=True, state={"running": {"startedAt": _now()}})
            fake.pod_logs[(namespace, name)] = {"current": ["INFO agent-core starting", "INFO listening on :8080"]}
        elif mode == "crashloop":
            status["phase"] = "Running"
            container["restartCount"] = min(container["restartCount"] + 1, 50)
            container["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                              "message": f"back-off 10s restarting failed container={container['name']} pod={name}"}}
            container["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": _now(), "finishedAt": _now()}}
            fake.pod_logs[(namespace, name)] = {"previous": list(log_lines or DEFAULT_CRASH_LOG)}
            self._event(pod, "Warning", "BackOff", f"Back-off restarting failed container {container['name']} in pod {name}")
        elif mode == "imagepull":
            container["state"] = {"waiting": {"reason": "ImagePullBackOff",
                                              "message": f'Back-off pulling image "{container["image"]}"'}}
            self._event(pod, "Warning", "Failed", f'Failed to pull image "{container["image"]}": not found')
            self._event(pod, "Warning", "BackOff", f'Back-off pulling image "{container["image"]}"')
        elif mode == "probe":
            status["phase"] = "Running"
            container.update(started=True, state={"running": {"startedAt": _now()}})
            fake.pod_logs[(namespace, name)] = {"current": ["INFO agent-core starting", "ERROR model backend unreachable"]}
            self._event(pod, "Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")
        elif mode == "pending":
            self._event(pod, "Warning", "FailedScheduling",
                        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available.")
        stored = fake.get("pods", namespace, name)
        if stored is not None and stored["status"] != status:
            stored["status"] = status
            stored["metadata"]["resourceVersion"] = fake.next_resource_version()
            fake.store("pods", stored)

    def _event(self, pod: dict, kind: str, reason: str, message: str) -> None:
        """Record an event, counting repeats like the real event recorder does."""
        fake = self.fake
        namespace, pod_name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        event_name = f"{pod_name}.{reason.lower()}"
        existing = fake.get("events", namespace, event_name)
        if existing is not None:
            existing["count"] = min(existing.get("count", 1) + 1, 10_000)
            existing["lastTimestamp"] = _now()
            existing["metadata"]["resourceVersion"] = fake.next_resource_version()
            fake.store("events", existing)
            return
        events_for_pod = [e for e in fake.list("events", namespace) if e["involvedObject"]["name"] == pod_name]
        if len(events_for_pod) >= MAX_EVENTS_PER_POD:
            return
        fake._create("events", namespace, {
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": namespace},
            "type": kind, "reason": reason, "message": message, "count": 1,
            "firstTimestamp": _now(), "lastTimestamp": _now(),
            "source": {"component": "kubelet"},
        })


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _now() -> str:
    from .server import now_rfc3339

    return now_rfc3339()


def _condition(kind: str, status: str, reason: str, message: str) -> dict:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": _now(), "lastTransitionTime": _now()}


def _without_times(status: dict) -> dict:
    stripped = copy.deepcopy(status)
    for condition in stripped.get("conditions", []):
        condition.pop("lastUpdateTime", None)
        condition.pop("lastTransitionTime", None)
    return stripped
