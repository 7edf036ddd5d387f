"""Render Kubernetes manifests (plain dicts) for an agent service from merged, validated values.

Pure functions: the same values give the same manifests, so a revision is exactly its JSON.
Names: Deployment ``<service>`` (stable), ``<service>-canary`` (gray) or ``<service>-<colour>``
(blue-green); Service ``<service>``; namespace ``agent-<env>``.
"""

from __future__ import annotations

import hashlib
import json
import re

from .base import TRACK_CANARY, TRACK_STABLE, Colour, Revision, TargetError, Track

MANAGED_BY = {"app.kubernetes.io/managed-by": "rollgate"}
COLOUR_LABEL = "rollgate.io/colour"
DESIRED_REPLICAS_ANNOTATION = "rollgate.io/desired-replicas"
CONFIG_DIGEST_ANNOTATION = "rollgate.io/config-digest"
IMAGE_TAG_ANNOTATION = "rollgate.io/image-tag"
# On a blue-green Service the selector belongs to switch_blue_green(): applying a revision must not
# move traffic to a colour that has not finished rolling out.
SELECTOR_OWNER_ANNOTATION = "rollgate.io/selector-owner"
SELECTOR_OWNED_BY_SWITCH = "blue-green-switch"
GRAY_HEADER = "x-gray-tag"

_LABEL_VALUE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def namespace_for(env: str) -> str:
    return f"agent-{env}"


def workload_name(service: str, *, track: Track = TRACK_STABLE, colour: Colour | None = None) -> str:
    if colour is not None:
        return f"{service}-{colour}"
    if track == TRACK_CANARY:
        return f"{service}-canary"
    return service


def track_service_name(service: str, track: Track) -> str:
    """Per-track Services that an Istio VirtualService routes to."""
    return f"{service}-{track}"


def version_label(image_tag: str) -> str:
    """Label values are limited to 63 characters; the full tag is kept in an annotation."""
    return _LABEL_VALUE_UNSAFE.sub("-", image_tag)[:63].strip("-_.") or "unknown"


def selector_labels(service: str, *, track: Track | None = TRACK_STABLE, colour: Colour | None = None) -> dict:
    labels = {"app": service}
    if track is not None:
        labels["track"] = track
    if colour is not None:
        labels[COLOUR_LABEL] = colour
    return labels


def render_namespace(env: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace_for(env), "labels": {**MANAGED_BY, "rollgate.io/env": env}},
    }


def render_resource_quota(service: str, namespace: str, quota: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": f"{service}-quota", "namespace": namespace, "labels": {**MANAGED_BY, "app": service}},
        "spec": {"hard": {key: str(amount) for key, amount in sorted(quota.items())}},
    }


def render_config_map(name: str, namespace: str, labels: dict, data: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": dict(sorted(data.items())),
    }


def _resources(values: dict) -> dict:
    resources = values.get("resources") or {}
    rendered = {}
    for section in ("requests", "limits"):
        if resources.get(section):
            rendered[section] = {name: str(amount) for name, amount in sorted(resources[section].items())}
    return rendered


def render_deployment(
    service: str,
    namespace: str,
    values: dict,
    *,
    image_tag: str,
    track: Track = TRACK_STABLE,
    colour: Colour | None = None,
    config_map_name: str | None = None,
    progress_deadline_seconds: int = 600,
) -> dict:
    name = workload_name(service, track=track, colour=colour)
    selector = selector_labels(service, track=track, colour=colour)
    labels = {**MANAGED_BY, **selector, "version": version_label(image_tag)}
    port = values["service"]["port"]
    container: dict = {
        "name": service,
        "image": f"{values['image']['repository']}:{image_tag}",
        "imagePullPolicy": values["image"].get("pullPolicy", "IfNotPresent"),
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
    }
    if values.get("env"):
        container["env"] = [{"name": item["name"], "value": item.get("value", "")} for item in values["env"]]
    env_from = []
    if config_map_name:
        env_from.append({"configMapRef": {"name": config_map_name}})
    env_from.extend({"secretRef": {"name": secret}} for secret in values.get("secretRefs") or [])
    if env_from:
        container["envFrom"] = env_from
    if _resources(values):
        container["resources"] = _resources(values)
    probe = values.get("readinessProbe")
    if probe:
        container["readinessProbe"] = {
            "httpGet": {"path": probe.get("path", "/healthz"), "port": probe.get("port", port)},
            "periodSeconds": 5,
            "failureThreshold": 3,
        }
    config_digest = hashlib.sha256(
        json.dumps(((values.get("configMap") or {}).get("data") or {}), sort_keys=True).encode()
    ).hexdigest()[:16]
    # The "restricted" Pod Security Standard, so clusters that enforce it admit the pods.
    security = values.get("securityContext") or {}
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        **({"readOnlyRootFilesystem": True} if security.get("readOnlyRootFilesystem") else {}),
    }
    pod_security = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        if security.get(key) is not None:
            pod_security[key] = security[key]
    pod_spec: dict = {"securityContext": pod_security, "containers": [container]}
    if values.get("imagePullSecrets"):
        pod_spec["imagePullSecrets"] = [{"name": name} for name in values["imagePullSecrets"]]
    if values.get("nodeSelector"):
        pod_spec["nodeSelector"] = dict(sorted(values["nodeSelector"].items()))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                DESIRED_REPLICAS_ANNOTATION: str(values["replicaCount"]),
                IMAGE_TAG_ANNOTATION: image_tag,
            },
        },
        "spec": {
            "replicas": values["replicaCount"],
            "selector": {"matchLabels": selector},
            # Keep every old pod serving until a new one is ready, so a failing image never
            # reduces capacity while we wait for the rollout verdict.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "progressDeadlineSeconds": progress_deadline_seconds,
            "template": {
                "metadata": {"labels": labels, "annotations": {CONFIG_DIGEST_ANNOTATION: config_digest}},
                "spec": pod_spec,
            },
        },
    }


def render_service(
    service: str,
    namespace: str,
    values: dict,
    *,
    name: str | None = None,
    selector: dict | None = None,
    selector_owned_by_switch: bool = False,
) -> dict:
    port = values["service"]["port"]
    metadata: dict = {"name": name or service, "namespace": namespace, "labels": {**MANAGED_BY, "app": service}}
    if selector_owned_by_switch:
        metadata["annotations"] = {SELECTOR_OWNER_ANNOTATION: SELECTOR_OWNED_BY_SWITCH}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": values["service"].get("type", "ClusterIP"),
            "selector": selector if selector is not None else {"app": service},
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def render_virtual_service(
    service: str,
    namespace: str,
    *,
    weight: int,
    stable_tag: str,
    canary_tag: str,
    header_match: dict[str, str] | None,
) -> dict:
    """Istio routing: requests matching the header go to the canary; the rest are split by weight."""
    stable_host = f"{track_service_name(service, TRACK_STABLE)}.{namespace}.svc.cluster.local"
    canary_host = f"{track_service_name(service, TRACK_CANARY)}.{namespace}.svc.cluster.local"
    routes = []
    if header_match:
        routes.append(
            {
                "name": "gray-header",
                "match": [{"headers": {key: {"exact": value} for key, value in sorted(header_match.items())}}],
                "route": [{"destination": {"host": canary_host}, "weight": 100}],
            }
        )
    routes.append(
        {
            "name": "weighted",
            "route": [
                {"destination": {"host": stable_host}, "weight": 100 - weight},
                {"destination": {"host": canary_host}, "weight": weight},
            ],
        }
    )
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {
            "name": service,
            "namespace": namespace,
            "labels": {**MANAGED_BY, "app": service},
            "annotations": {"rollgate.io/stable-tag": stable_tag, "rollgate.io/canary-tag": canary_tag},
        },
        "spec": {"hosts": [service], "http": routes},
    }


def render_revision(
    service: str,
    env: str,
    values: dict,
    *,
    track: Track = TRACK_STABLE,
    colour: Colour | None = None,
    progress_deadline_seconds: int = 600,
) -> Revision:
    """Render the full manifest set for one release of ``service`` into ``env``.

    ``values`` must come from values.merge_values() (validated, image tag pinned).
    A canary revision holds only its ConfigMap and Deployment: the namespace, quota and Service
    belong to the stable track. A blue-green revision renders its colour's workload and a Service
    whose selector only switch_blue_green() changes once it exists.
    """
    if track == TRACK_CANARY and colour is not None:
        raise TargetError("a revision is either a canary or a blue-green colour, not both")
    namespace = namespace_for(env)
    image_tag = values["image"]["tag"]
    name = workload_name(service, track=track, colour=colour)
    manifests: list[dict] = []
    if track == TRACK_STABLE:
        manifests.append(render_namespace(env))
        if values.get("resourceQuota"):
            manifests.append(render_resource_quota(service, namespace, values["resourceQuota"]))
    config_data = (values.get("configMap") or {}).get("data") or {}
    config_map_name = None
    if config_data:
        config_map_name = f"{name}-config"
        labels = {**MANAGED_BY, **selector_labels(service, track=track, colour=colour)}
        manifests.append(render_config_map(config_map_name, namespace, labels, config_data))
    manifests.append(
        render_deployment(
            service, namespace, values, image_tag=image_tag, track=track, colour=colour,
            config_map_name=config_map_name, progress_deadline_seconds=progress_deadline_seconds,
        )
    )
    if track == TRACK_STABLE:
        if colour is not None:
            selector = selector_labels(service, track=None, colour=colour)
            manifests.append(render_service(service, namespace, values, selector=selector, selector_owned_by_switch=True))
        else:
            manifests.append(render_service(service, namespace, values, selector={"app": service}))
    return Revision(
        service=service, env=env, namespace=namespace, image_tag=image_tag,
        track=track, colour=colour, manifests=tuple(manifests),
    )
