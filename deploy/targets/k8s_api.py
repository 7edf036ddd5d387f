"""The one place that calls the official ``kubernetes`` client.

Objects go in and come out as plain JSON dicts (raw responses, not the generated models), so what
we compare and store is exactly what the API server holds. Every failure becomes a TargetError
with a redacted, human-readable message; the client's own exception (which carries response
headers and bodies) is not chained, so nothing from it leaks into logs or API output.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from .base import TargetError
from .k8s_credentials import Redactor, api_client_host

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSION = "v1beta1"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply; JSON is YAML, the client sends JSON
FIELD_MANAGER = "rollgate"


class ConflictError(TargetError):
    """409: the object changed since we read it (or already exists); re-read and try again."""


class KubernetesApi:
    def __init__(self, api_client: k8s_client.ApiClient, redactor: Redactor, *, request_timeout_seconds: float = 10):
        self._api_client = api_client
        self._redact = redactor
        self._timeout = request_timeout_seconds
        self.core = k8s_client.CoreV1Api(api_client)
        self.apps = k8s_client.AppsV1Api(api_client)
        self.custom = k8s_client.CustomObjectsApi(api_client)
        self.apis = k8s_client.ApisApi(api_client)

    def __repr__(self) -> str:
        return f"KubernetesApi(host={api_client_host(self._api_client)!r})"

    @property
    def host(self) -> str:
        return api_client_host(self._api_client)

    def close(self) -> None:
        self._api_client.close()

    # -- error handling -----------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, *args: Any, missing_ok: bool = False, raw: bool = True, **kwargs: Any):
        try:
            if raw:
                response = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
                data = response.data
                if not data:
                    return {}
                text = data.decode("utf-8", errors="replace")
                try:
                    return json.loads(text)
                except ValueError:
                    return text
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            message = self._status_message(exc)
            error_class = ConflictError if exc.status == 409 else TargetError
            raise error_class(self._redact(f"{what} failed: HTTP {exc.status} {message}")) from None
        except urllib3.exceptions.HTTPError as exc:
            raise TargetError(self._redact(f"{what} failed: cannot reach the Kubernetes API at {self.host} ({type(exc).__name__})")) from None

    @staticmethod
    def _status_message(exc: ApiException) -> str:
        body = exc.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", errors="replace")
        try:
            status = json.loads(body) if body else {}
        except ValueError:
            status = {}
        if isinstance(status, dict) and status.get("message"):
            return f"{status.get('reason') or exc.reason}: {status['message']}"
        return str(exc.reason or "")

    # -- generic object access by kind --------------------------------------------------------
    def _ops(self, kind: str):
        core, apps, custom = self.core, self.apps, self.custom
        table = {
            "Namespace": (lambda ns, name, **kw: core.read_namespace(name, **kw),
                          lambda ns, body, **kw: core.create_namespace(body, **kw),
                          lambda ns, name, body, **kw: core.patch_namespace(name, body, **kw)),
            "ResourceQuota": (lambda ns, name, **kw: core.read_namespaced_resource_quota(name, ns, **kw),
                              lambda ns, body, **kw: core.create_namespaced_resource_quota(ns, body, **kw),
                              lambda ns, name, body, **kw: core.patch_namespaced_resource_quota(name, ns, body, **kw)),
            "ConfigMap": (lambda ns, name, **kw: core.read_namespaced_config_map(name, ns, **kw),
                          lambda ns, body, **kw: core.create_namespaced_config_map(ns, body, **kw),
                          lambda ns, name, body, **kw: core.patch_namespaced_config_map(name, ns, body, **kw)),
            "Service": (lambda ns, name, **kw: core.read_namespaced_service(name, ns, **kw),
                        lambda ns, body, **kw: core.create_namespaced_service(ns, body, **kw),
                        lambda ns, name, body, **kw: core.patch_namespaced_service(name, ns, body, **kw)),
            "Deployment": (lambda ns, name, **kw: apps.read_namespaced_deployment(name, ns, **kw),
                           lambda ns, body, **kw: apps.create_namespaced_deployment(ns, body, **kw),
                           lambda ns, name, body, **kw: apps.patch_namespaced_deployment(name, ns, body, **kw)),
            "VirtualService": (
                lambda ns, name, **kw: custom.get_namespaced_custom_object(ISTIO_GROUP, ISTIO_VERSION, ns, "virtualservices", name, **kw),
                lambda ns, body, **kw: custom.create_namespaced_custom_object(ISTIO_GROUP, ISTIO_VERSION, ns, "virtualservices", body, **kw),
                lambda ns, name, body, **kw: custom.patch_namespaced_custom_object(ISTIO_GROUP, ISTIO_VERSION, ns, "virtualservices", name, body, **kw),
            ),
        }
        if kind not in table:
            raise TargetError(f"the Kubernetes target does not manage objects of kind {kind}")
        return table[kind]

    def read(self, kind: str, namespace: str | None, name: str) -> dict | None:
        read, _, _ = self._ops(kind)
        return self._call(f"read {kind} {_where(namespace, name)}", read, namespace, name, missing_ok=True)

    def create(self, kind: str, namespace: str | None, body: dict) -> dict:
        _, create, _ = self._ops(kind)
        return self._call(f"create {kind} {_where(namespace, body['metadata']['name'])}", create, namespace, body)

    def apply(self, kind: str, namespace: str | None, name: str, body: dict) -> dict:
        """Server-side apply as field manager "rollgate" (created when missing). The server merges what we own
        and drops fields we applied before and no longer send; fields other managers own are kept. force=True:
        Rollgate is the owner of what it renders, so it takes fields over from a manual kubectl edit."""
        _, _, patch = self._ops(kind)
        return self._call(f"apply {kind} {_where(namespace, name)}", patch, namespace, name, body,
                          field_manager=FIELD_MANAGER, force=True, _content_type=APPLY_PATCH)

    def patch_deployment(self, namespace: str, name: str, patch: dict) -> dict:
        return self._call(f"patch Deployment {_where(namespace, name)}", self.apps.patch_namespaced_deployment,
                          name, namespace, patch, _content_type=MERGE_PATCH)

    def patch_service(self, namespace: str, name: str, patch: dict) -> dict:
        return self._call(f"patch Service {_where(namespace, name)}", self.core.patch_namespaced_service,
                          name, namespace, patch, _content_type=MERGE_PATCH)

    def list_pods(self, namespace: str, label_selector: str) -> list[dict]:
        found = self._call(f"list pods in {namespace}", self.core.list_namespaced_pod, namespace, label_selector=label_selector)
        return found.get("items") or []

    def list_events(self, namespace: str, *, involved_name: str) -> list[dict]:
        found = self._call(f"list events in {namespace}", self.core.list_namespaced_event, namespace,
                           field_selector=f"involvedObject.name={involved_name}")
        return found.get("items") or []

    def pod_log(self, namespace: str, pod: str, *, container: str, tail_lines: int, previous: bool) -> list[str]:
        text = self._call(f"read log of pod {_where(namespace, pod)}", self.core.read_namespaced_pod_log,
                          pod, namespace, container=container, tail_lines=tail_lines, previous=previous)
        if isinstance(text, dict):  # an empty body decodes to {}
            return []
        return [self._redact(line) for line in str(text).splitlines()]

    def istio_available(self) -> bool:
        """True when API discovery lists networking.istio.io/v1beta1 (the VirtualService CRD)."""
        groups = self._call("discover API groups", self.apis.get_api_versions).get("groups") or []
        return any(
            group.get("name") == ISTIO_GROUP
            and any(version.get("version") == ISTIO_VERSION for version in group.get("versions") or [])
            for group in groups
        )


def _where(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name
