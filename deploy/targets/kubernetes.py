"""The Kubernetes deploy target: apply revisions, watch rollouts, split gray traffic, switch colours.

Apply is server-side apply (field manager "rollgate") with a read first: an object whose live state already
contains every field of the manifest is left alone, so applying the same revision twice sends no write and the
Deployment's generation does not move. A changed object is applied whole: the API server drops the fields
Rollgate applied before and no longer renders, so re-applying an old revision restores exactly its manifests
("rollback to N"), while fields that other controllers own (annotations, clusterIP) stay theirs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Literal

from .base import (
    COLOURS,
    TRACK_CANARY,
    TRACK_STABLE,
    ApplyResult,
    BlueGreenSwitch,
    Colour,
    DeployTarget,
    LogFn,
    ObjectChange,
    Revision,
    RolloutResult,
    ScaleDownResult,
    TargetError,
    TrafficResult,
)
from .k8s_api import ConflictError, KubernetesApi
from .k8s_credentials import KubernetesCredentials, Redactor, build_api_client
from .k8s_rollout import RolloutWatcher
from .manifests import (
    COLOUR_LABEL,
    DESIRED_REPLICAS_ANNOTATION,
    SELECTOR_OWNED_BY_SWITCH,
    SELECTOR_OWNER_ANNOTATION,
    namespace_for,
    render_service,
    render_virtual_service,
    selector_labels,
    track_service_name,
    version_label,
    workload_name,
)
from .values import parse_quantity


@dataclass(frozen=True)
class KubernetesTargetSettings:
    """Per-environment behaviour of the target (stored with the environment's target settings)."""

    allow_namespace_create: bool = False
    rollout_timeout_seconds: float = 600
    poll_interval_seconds: float = 2.0
    idle_scale_down_delay_seconds: float = 300
    traffic_mode: Literal["auto", "istio", "replica-ratio"] = "auto"
    log_tail_lines: int = 20
    probe_failure_threshold: int = 3
    request_timeout_seconds: float = 10
    conflict_retries: int = 5


class KubernetesTarget(DeployTarget):
    def __init__(
        self,
        credentials: KubernetesCredentials,
        *,
        log: LogFn,
        settings: KubernetesTargetSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.settings = settings or KubernetesTargetSettings()
        self._redactor = Redactor(credentials.secret_values())
        self._log = self._redactor.wrap(log)
        self._credentials_description = credentials.describe()
        self._api = KubernetesApi(
            build_api_client(credentials), self._redactor,
            request_timeout_seconds=self.settings.request_timeout_seconds,
        )
        self._clock = clock

    def __repr__(self) -> str:
        return f"KubernetesTarget(host={self._api.host!r}, auth={self._credentials_description!r})"

    def close(self) -> None:
        self._api.close()

    # -- apply ----------------------------------------------------------------------------
    def apply(self, revision: Revision) -> ApplyResult:
        self._log(f"applying {revision.service}:{revision.image_tag} to namespace {revision.namespace} "
                  f"({len(revision.manifests)} objects, revision {revision.digest[:12]})")
        changes = []
        for manifest in revision.manifests:
            if manifest["kind"] == "Namespace":
                change = self._apply_namespace(manifest)
            else:
                change = self._apply_object(manifest)
            self._log(f"  {change.kind}/{change.name}: {change.action}")
            changes.append(change)
        return ApplyResult(tuple(changes))

    def _apply_namespace(self, manifest: dict) -> ObjectChange:
        name = manifest["metadata"]["name"]
        live = self._api.read("Namespace", None, name)
        if live is None:
            if not self.settings.allow_namespace_create:
                raise TargetError(f"namespace {name} does not exist and this environment's target may not create "
                                  "namespaces; ask a cluster administrator to create it")
            try:
                self._api.create("Namespace", None, manifest)
            except ConflictError:
                return ObjectChange("Namespace", name, "unchanged")
            return ObjectChange("Namespace", name, "created")
        if _contains(live, manifest) or not self.settings.allow_namespace_create:
            # Without the right to create namespaces we do not relabel them either.
            return ObjectChange("Namespace", name, "unchanged" if _contains(live, manifest) else "skipped")
        return self._apply_object(manifest)

    def _apply_object(self, manifest: dict) -> ObjectChange:
        kind, meta = manifest["kind"], manifest["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        live = self._api.read(kind, namespace, name)
        desired = self._desired_against_live(manifest, live) if live is not None else manifest
        if live is not None and _contains(live, desired):
            return ObjectChange(kind, name, "unchanged")
        self._api.apply(kind, namespace, name, copy.deepcopy(desired))
        return ObjectChange(kind, name, "created" if live is None else "updated")

    @staticmethod
    def _desired_against_live(manifest: dict, live: dict) -> dict:
        annotations = manifest["metadata"].get("annotations") or {}
        if manifest["kind"] == "Service" and annotations.get(SELECTOR_OWNER_ANNOTATION) == SELECTOR_OWNED_BY_SWITCH:
            desired = copy.deepcopy(manifest)
            desired["spec"]["selector"] = copy.deepcopy((live.get("spec") or {}).get("selector") or manifest["spec"]["selector"])
            return desired
        return manifest

    # -- rollout --------------------------------------------------------------------------
    def watch_rollout(self, revision: Revision, *, timeout_seconds: float | None = None) -> RolloutResult:
        watcher = RolloutWatcher(
            self._api, self._log,
            poll_interval_seconds=self.settings.poll_interval_seconds,
            log_tail_lines=self.settings.log_tail_lines,
            probe_failure_threshold=self.settings.probe_failure_threshold,
        )
        timeout = self.settings.rollout_timeout_seconds if timeout_seconds is None else timeout_seconds
        return watcher.watch(revision, timeout)

    # -- gray -----------------------------------------------------------------------------
    def set_traffic(self, service: str, env: str, *, stable_tag: str, canary_tag: str, weight: int,
                    header_match: dict[str, str] | None = None) -> TrafficResult:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise TargetError(f"canary weight must be a whole percentage from 0 to 100 (got {weight!r})")
        namespace = namespace_for(env)
        stable = self._require_deployment(namespace, workload_name(service, track=TRACK_STABLE), stable_tag, "stable")
        canary = self._require_deployment(namespace, workload_name(service, track=TRACK_CANARY), canary_tag, "canary")
        if self._traffic_mode() == "istio":
            return self._set_istio_weights(service, namespace, stable_tag, canary_tag, weight, header_match)
        return self._set_replica_ratio(service, namespace, stable, canary, weight, header_match)

    def _traffic_mode(self) -> str:
        mode = self.settings.traffic_mode
        if mode == "replica-ratio":
            return mode
        available = self._api.istio_available()
        if mode == "istio" and not available:
            raise TargetError("this environment is set to route gray traffic with Istio, but the cluster does not "
                              "serve networking.istio.io/v1beta1 (VirtualService)")
        return "istio" if available else "replica-ratio"

    def _require_deployment(self, namespace: str, name: str, tag: str, role: str) -> dict:
        deployment = self._api.read("Deployment", namespace, name)
        if deployment is None:
            raise TargetError(f"the {role} Deployment {namespace}/{name} does not exist; deploy the {role} revision first")
        running = (deployment["metadata"].get("labels") or {}).get("version")
        if running != version_label(tag):
            raise TargetError(f"the {role} Deployment {namespace}/{name} runs version {running!r}, not {tag!r}")
        return deployment

    def _set_istio_weights(self, service, namespace, stable_tag, canary_tag, weight, header_match) -> TrafficResult:
        main_service = self._api.read("Service", namespace, service)
        if main_service is None:
            raise TargetError(f"Service {namespace}/{service} does not exist; deploy the stable revision first")
        port = main_service["spec"]["ports"][0]["port"]
        values = {"service": {"type": "ClusterIP", "port": port}}
        for track in (TRACK_STABLE, TRACK_CANARY):
            track_service = render_service(service, namespace, values, name=track_service_name(service, track),
                                           selector=selector_labels(service, track=track))
            self._apply_object(track_service)
        virtual_service = render_virtual_service(service, namespace, weight=weight, stable_tag=stable_tag,
                                                 canary_tag=canary_tag, header_match=header_match)
        change = self._apply_object(virtual_service)
        match = f", header match {header_match}" if header_match else ""
        self._log(f"Istio VirtualService {namespace}/{service}: canary {canary_tag} weight {weight}%{match} ({change.action})")
        return TrafficResult("istio", weight, float(weight), header_match)

    def _set_replica_ratio(self, service, namespace, stable, canary, weight, header_match) -> TrafficResult:
        pool = int((stable["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS_ANNOTATION) or stable["spec"].get("replicas", 1))
        pool = max(pool, 1)
        if weight == 0:
            canary_replicas, stable_replicas = 0, pool
        elif weight == 100:
            canary_replicas, stable_replicas = pool, 0
        else:
            # Replicas are whole pods: a small weight still needs one canary pod, and the stable
            # track keeps at least one, so the effective split is reported, not assumed.
            canary_replicas = max(1, round(pool * weight / 100))
            stable_replicas = max(pool - canary_replicas, 1)
        if header_match:
            self._log(f"no Istio in this cluster: header match {header_match} cannot be honoured; "
                      "splitting by replica ratio only")
        namespace_of = stable["metadata"]["namespace"]
        self._api.patch_deployment(namespace_of, canary["metadata"]["name"], {"spec": {"replicas": canary_replicas}})
        self._api.patch_deployment(namespace_of, stable["metadata"]["name"], {"spec": {"replicas": stable_replicas}})
        total = canary_replicas + stable_replicas
        effective = round(100.0 * canary_replicas / total, 1) if total else 0.0
        self._log(f"replica ratio for {service}: stable {stable_replicas}, canary {canary_replicas} "
                  f"(requested {weight}%, effective {effective}%)")
        return TrafficResult("replica-ratio", weight, effective, None, stable_replicas, canary_replicas)

    def scale(self, service: str, env: str, *, replicas: int, track: str = TRACK_STABLE,
              colour: Colour | None = None, only_version: str | None = None) -> bool:
        """Set one workload's replica count (a cut canary, a failed colour); False when it does not exist, or
        when ``only_version`` is given and the workload runs another version (someone else's by now)."""
        namespace = namespace_for(env)
        name = workload_name(service, track=track, colour=colour)
        deployment = self._api.read("Deployment", namespace, name)
        if deployment is None:
            return False
        if only_version is not None and \
                (deployment["metadata"].get("labels") or {}).get("version") != version_label(only_version):
            return False
        if deployment["spec"].get("replicas") != replicas:
            self._api.patch_deployment(namespace, name, {"spec": {"replicas": replicas}})
            self._log(f"scaled {namespace}/{name} to {replicas} replicas")
        return True

    # -- blue-green -----------------------------------------------------------------------
    def active_colour(self, service: str, env: str) -> Colour | None:
        live = self._api.read("Service", namespace_for(env), service)
        if live is None:
            return None
        return ((live.get("spec") or {}).get("selector") or {}).get(COLOUR_LABEL)

    def switch_blue_green(self, service: str, env: str, *, to_colour: Colour) -> BlueGreenSwitch:
        if to_colour not in COLOURS:
            raise TargetError(f"colour must be one of {', '.join(COLOURS)} (got {to_colour!r})")
        namespace = namespace_for(env)
        target_name = workload_name(service, colour=to_colour)
        deployment = self._api.read("Deployment", namespace, target_name)
        if deployment is None:
            raise TargetError(f"cannot switch {service} to {to_colour}: Deployment {namespace}/{target_name} does not exist")
        desired = deployment["spec"].get("replicas", 0)
        available = (deployment.get("status") or {}).get("availableReplicas", 0)
        if desired == 0:
            raise TargetError(f"refusing to switch {service} to {to_colour}: {target_name} is scaled down to 0 replicas; "
                              "re-apply its revision first")
        if available < desired:
            raise TargetError(f"refusing to switch {service} to {to_colour}: only {available} of {desired} replicas available")
        for _attempt in range(self.settings.conflict_retries + 1):
            live = self._api.read("Service", namespace, service)
            if live is None:
                raise TargetError(f"Service {namespace}/{service} does not exist; apply a blue-green revision first")
            previous = (live["spec"].get("selector") or {}).get(COLOUR_LABEL)
            if previous == to_colour:
                self._log(f"{service} already routes to {to_colour}")
                return BlueGreenSwitch(to_colour, previous, None)
            # One merge patch, guarded by resourceVersion: the selector flips atomically or not at all.
            patch = {"metadata": {"resourceVersion": live["metadata"]["resourceVersion"]},
                     "spec": {"selector": {COLOUR_LABEL: to_colour}}}
            try:
                self._api.patch_service(namespace, service, patch)
            except ConflictError:
                continue
            due_at = self._clock() + timedelta(seconds=self.settings.idle_scale_down_delay_seconds)
            self._log(f"switched {service} in {env} from {previous or 'none'} to {to_colour}; "
                      f"idle colour {previous or 'none'} may be scaled down after {due_at.isoformat()}")
            return BlueGreenSwitch(to_colour, previous, due_at)
        raise TargetError(f"Service {namespace}/{service} kept changing while switching colours")

    def scale_down_idle(self, service: str, env: str) -> ScaleDownResult:
        namespace = namespace_for(env)
        active = self.active_colour(service, env)
        if active not in COLOURS:
            return ScaleDownResult(None, False, f"{service} has no active colour; nothing is idle")
        idle = COLOURS[1] if active == COLOURS[0] else COLOURS[0]
        name = workload_name(service, colour=idle)
        deployment = self._api.read("Deployment", namespace, name)
        if deployment is None:
            return ScaleDownResult(idle, False, f"Deployment {namespace}/{name} does not exist")
        if deployment["spec"].get("replicas", 0) == 0:
            return ScaleDownResult(idle, False, "already scaled down")
        self._api.patch_deployment(namespace, name, {"spec": {"replicas": 0}})
        self._log(f"scaled down idle colour {idle} of {service} in {env} ({name})")
        return ScaleDownResult(idle, True, "scaled down to 0 replicas")


def _contains(live, desired, path: str = "") -> bool:
    """True when every field of ``desired`` is present in ``live`` with the same value.

    Fields the server adds (defaults, status, clusterIP) do not count as differences. Resource
    quantities compare by amount, because the API server normalises them ("1000m" -> "1").
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            key in live and _contains(live[key], value, f"{path}.{key}") for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (isinstance(live, list) and len(live) == len(desired)
                and all(_contains(a, b, path) for a, b in zip(live, desired)))
    if live == desired:
        return True
    if (".resources." in path or ".hard." in path) and isinstance(desired, str):
        try:
            return parse_quantity(str(live)) == parse_quantity(desired)
        except ValueError:
            return False
    return False
