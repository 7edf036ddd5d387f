"""A small Kubernetes API server for tests, spoken to by the official ``kubernetes`` client unchanged.

Served over plain HTTP on 127.0.0.1 from a thread. It keeps objects in memory with the REST
semantics Rollgate relies on:

* create (POST) answers 409 AlreadyExists for an existing name and 404 for a missing namespace;
* replace (PUT) answers 409 Conflict when ``metadata.resourceVersion`` is stale, keeps ``status``,
  keeps a Service's ``clusterIP`` and refuses a changed Deployment selector (422);
* patch (PATCH) with ``application/merge-patch+json`` or ``application/strategic-merge-patch+json``
  merges mappings and replaces lists (RFC 7386). Rollgate only sends patches made of mappings and
  scalars, where both patch types agree; JSON Patch is refused with 415;
* ``resourceVersion`` changes only when an object changes and ``generation`` only when its
  ``spec`` changes, as on a real API server, so a no-op apply is visible as such;
* a few server-side defaults are filled in (as the real server does) so that "same revision,
  nothing to change" cannot be decided by naive equality;
* ``/apis`` discovery lists networking.istio.io only while Istio is switched on.

The controller in ``controller.py`` moves Deployment status forward and creates pods.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .controller import FakeController

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSION = "v1beta1"

RESOURCES = {
    # resource: (group/version, kind, namespaced)
    "namespaces": ("v1", "Namespace", False),
    "resourcequotas": ("v1", "ResourceQuota", True),
    "configmaps": ("v1", "ConfigMap", True),
    "secrets": ("v1", "Secret", True),
    "services": ("v1", "Service", True),
    "pods": ("v1", "Pod", True),
    "events": ("v1", "Event", True),
    "deployments": ("apps/v1", "Deployment", True),
    "virtualservices": (f"{ISTIO_GROUP}/{ISTIO_VERSION}", "VirtualService", True),
}

_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?"
    r"/(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[a-z]+))?/?$"
)


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def drop_unapplied(target, before, now):
    """Server-side apply: fields the manager applied ``before`` and no longer sends ``now`` are removed."""
    if not isinstance(target, dict) or not isinstance(before, dict):
        return target
    result = copy.deepcopy(target)
    for key, value in before.items():
        if not isinstance(now, dict) or key not in now:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = drop_unapplied(result.get(key), value, now[key])
    return result


ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"


def restricted_violations(pod_spec: dict) -> list[str]:
    """The checks of the "restricted" Pod Security Standard that a rendered pod can fail (a subset)."""
    problems = []
    pod_security = pod_spec.get("securityContext") or {}
    for container in pod_spec.get("containers") or []:
        security = container.get("securityContext") or {}
        name = container.get("name")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f'allowPrivilegeEscalation != false (container "{name}" must set '
                            "securityContext.allowPrivilegeEscalation=false)")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            problems.append(f'unrestricted capabilities (container "{name}" must set '
                            'securityContext.capabilities.drop=["ALL"])')
        if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
            problems.append(f'runAsNonRoot != true (pod or container "{name}" must set runAsNonRoot=true)')
        seccomp = (security.get("seccompProfile") or pod_security.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f'seccompProfile (pod or container "{name}" must set seccompProfile.type to '
                            '"RuntimeDefault" or "Localhost")')
    return problems


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict:
        return {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }


class FakeKubernetes:
    """In-memory API objects plus the HTTP server and controller that serve and animate them."""

    def __init__(self, *, token: str, istio: bool = True, tick_seconds: float = 0.02,
                 deadline_scale: float = 0.05):
        self.token = token
        self.istio = istio
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str | None, str], dict] = {}
        self.pod_logs: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content-type)
        # Objects whose next PUT finds them changed by "someone else" (to exercise 409 handling).
        self.conflict_next_put: set[tuple[str, str | None, str]] = set()
        # Server-side apply: what each field manager last applied to each object.
        self.applied: dict[tuple[str, str | None, str, str], dict] = {}
        self._resource_version = 1000
        self._cluster_ip = 10
        self.controller = FakeController(self, tick_seconds=tick_seconds, deadline_scale=deadline_scale)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "FakeKubernetes":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-k8s-http", daemon=True)
        self._thread.start()
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- test controls ---------------------------------------------------------------------
    def fail_image(self, image_tag: str, mode: str, log_lines: list[str] | None = None) -> None:
        """Make pods running ``...:image_tag`` fail: crashloop, imagepull, probe or pending."""
        self.controller.failures[image_tag] = (mode, log_lines)

    def get(self, resource: str, namespace: str | None, name: str) -> dict | None:
        with self.lock:
            found = self.objects.get((resource, namespace, name))
            return copy.deepcopy(found) if found else None

    def put_object(self, resource: str, obj: dict) -> dict:
        """Seed an object directly (e.g. a pre-existing Secret or Namespace)."""
        with self.lock:
            return self._create(resource, obj.get("metadata", {}).get("namespace"), obj)

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(o) for (r, ns, _), o in sorted(self.objects.items(), key=lambda i: str(i[0]))
                    if r == resource and (namespace is None or ns == namespace)]

    # -- storage primitives (call with lock held) --------------------------------------------
    def next_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def store(self, resource: str, obj: dict) -> None:
        meta = obj["metadata"]
        self.objects[(resource, meta.get("namespace"), meta["name"])] = obj

    def delete_object(self, resource: str, namespace: str | None, name: str) -> None:
        self.objects.pop((resource, namespace, name), None)
        if resource == "pods":
            self.pod_logs.pop((namespace, name), None)

    def _apply_defaults(self, resource: str, obj: dict) -> None:
        gv, kind, _ = RESOURCES[resource]
        obj["apiVersion"], obj["kind"] = gv, kind
        spec = obj.get("spec")
        if resource == "deployments" and isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            pod_spec = spec.get("template", {}).get("spec", {})
            pod_spec.setdefault("restartPolicy", "Always")
            pod_spec.setdefault("dnsPolicy", "ClusterFirst")
            for container in pod_spec.get("containers", []):
                container.setdefault("terminationMessagePath", "/dev/termination-log")
                container.setdefault("terminationMessagePolicy", "File")
        if resource == "services" and isinstance(spec, dict):
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            for port in spec.get("ports", []):
                port.setdefault("protocol", "TCP")

    def _admit(self, resource: str, namespace: str | None, obj: dict) -> None:
        """PodSecurity admission for namespaces labelled enforce=restricted. A real cluster admits the Deployment
        and refuses its pods; the fake refuses the Deployment, which a test notices at once."""
        if resource != "deployments":
            return
        ns = self.objects.get(("namespaces", None, namespace)) or {}
        if ((ns.get("metadata") or {}).get("labels") or {}).get(ENFORCE_LABEL) != "restricted":
            return
        problems = restricted_violations(((obj.get("spec") or {}).get("template") or {}).get("spec") or {})
        if problems:
            raise ApiError(403, "Forbidden", f'violates PodSecurity "restricted:latest": {", ".join(problems)}')

    def _create(self, resource: str, namespace: str | None, body: dict) -> dict:
        _, kind, namespaced = RESOURCES[resource]
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", f"{kind}: metadata.name: Required value")
        if namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the request")
            meta["namespace"] = namespace
            if ("namespaces", None, namespace) not in self.objects:
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
        if (resource, namespace if namespaced else None, name) in self.objects:
            raise ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists')
        self._admit(resource, namespace, obj)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), resourceVersion=self.next_resource_version())
        self._apply_defaults(resource, obj)
        if "spec" in obj and resource != "namespaces":
            meta["generation"] = 1
        if resource == "deployments":
            obj["status"] = {"observedGeneration": 0}
        if resource == "namespaces":
            obj["status"] = {"phase": "Active"}
        if resource == "services":
            self._cluster_ip += 1
            obj["spec"]["clusterIP"] = f"10.96.0.{self._cluster_ip}"
            obj["spec"]["clusterIPs"] = [obj["spec"]["clusterIP"]]
        self.store(resource, obj)
        return obj

    def _update(self, resource: str, current: dict, new: dict) -> dict:
        """Shared tail of PUT and PATCH: immutable fields, status kept, versions bumped on change."""
        _, kind, _ = RESOURCES[resource]
        name = current["metadata"]["name"]
        new = copy.deepcopy(new)
        meta = new.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "namespace", "name", "generation"):
            if key in current["metadata"]:
                meta[key] = current["metadata"][key]
        if "status" in current:
            new["status"] = copy.deepcopy(current["status"])
        self._apply_defaults(resource, new)
        if resource == "services":
            for key in ("clusterIP", "clusterIPs"):
                wanted = new["spec"].get(key)
                if wanted not in (None, "", current["spec"][key]):
                    raise ApiError(422, "Invalid", f'Service "{name}" is invalid: spec.{key}: field is immutable')
                new["spec"][key] = current["spec"][key]
        if resource == "deployments" and new.get("spec", {}).get("selector") != current["spec"].get("selector"):
            raise ApiError(422, "Invalid", f'Deployment.apps "{name}" is invalid: spec.selector: field is immutable')
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if new == current:
            return current
        self._admit(resource, current["metadata"].get("namespace"), new)
        if new.get("spec") != current.get("spec") and "generation" in current["metadata"]:
            meta["generation"] = current["metadata"]["generation"] + 1
        meta["resourceVersion"] = self.next_resource_version()
        self.store(resource, new)
        return new

    # -- HTTP verbs -----------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, content_type: str, body: bytes):
        """Returns (status code, JSON-able body or text)."""
        if path in ("/api", "/api/"):
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path in ("/apis", "/apis/"):
            return 200, self._discovery()
        match = _PATH.match(path)
        if not match:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        gv = "v1" if match["core"] else f"{match['group']}/{match['version']}"
        resource, namespace, name, sub = match["resource"], match["ns"], match["name"], match["sub"]
        if resource not in RESOURCES or RESOURCES[resource][0] != gv:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if resource == "virtualservices" and not self.istio:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not RESOURCES[resource][2]:
            namespace = None
        with self.lock:
            if name is None:
                if method == "GET":
                    return 200, self._list(resource, namespace, query)
                if method == "POST":
                    return 201, self._create(resource, namespace, self._json(body))
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here")
            key = (resource, namespace, name)
            current = self.objects.get(key)
            if method == "PATCH" and content_type.split(";")[0].strip() == "application/apply-patch+yaml":
                return self._server_side_apply(resource, namespace, name, current, query, body)
            if sub == "log" and resource == "pods":
                return self._pod_log(current, namespace, name, query)
            if current is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            if method == "GET":
                return 200, copy.deepcopy(current)
            if method == "DELETE":
                self.delete_object(resource, namespace, name)
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            if method == "PUT":
                new = self._json(body)
                if key in self.conflict_next_put:
                    self.conflict_next_put.discard(key)
                    current["metadata"]["resourceVersion"] = self.next_resource_version()
                wanted = new.get("metadata", {}).get("resourceVersion")
                if wanted and wanted != current["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": '
                                                    "the object has been modified; please apply your changes to the latest version and try again")
                return 200, copy.deepcopy(self._update(resource, current, new))
            if method == "PATCH":
                base = content_type.split(";")[0].strip()
                if base not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    raise ApiError(415, "UnsupportedMediaType", f"the fake API server does not implement {base}")
                patch = self._json(body)
                wanted = (patch.get("metadata") or {}).get("resourceVersion")
                if wanted and wanted != current["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified')
                return 200, copy.deepcopy(self._update(resource, current, merge_patch(current, patch)))
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _server_side_apply(self, resource, namespace, name, current, query, body):
        manager = (query.get("fieldManager") or [""])[0]
        if not manager:
            raise ApiError(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                           "is required for apply patch")
        applied = self._json(body)  # JSON is YAML; the client sends JSON
        if (applied.get("metadata") or {}).get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        entry = {"manager": manager, "operation": "Apply", "apiVersion": RESOURCES[resource][0],
                 "fieldsType": "FieldsV1"}
        owned = (resource, namespace, name, manager)
        if current is None:
            created = copy.deepcopy(applied)
            created.setdefault("metadata", {})["managedFields"] = [entry]
            obj = self._create(resource, namespace, created)
            self.applied[owned] = applied
            return 201, copy.deepcopy(obj)
        base = drop_unapplied(current, self.applied.get(owned, {}), applied)
        merged = merge_patch(base, applied)
        others = [f for f in (current["metadata"].get("managedFields") or []) if f.get("manager") != manager]
        merged["metadata"]["managedFields"] = others + [entry]
        self.applied[owned] = applied
        return 200, copy.deepcopy(self._update(resource, current, merged))

    @staticmethod
    def _json(body: bytes) -> dict:
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "BadRequest", "request body is not JSON") from None
        if not isinstance(parsed, dict):
            raise ApiError(400, "BadRequest", "request body must be an object")
        return parsed

    def _discovery(self) -> dict:
        groups = [("apps", "v1")]
        if self.istio:
            groups.append((ISTIO_GROUP, ISTIO_VERSION))
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{version}", "version": version}],
                    "preferredVersion": {"groupVersion": f"{group}/{version}", "version": version},
                }
                for group, version in groups
            ],
        }

    def _list(self, resource: str, namespace: str | None, query: dict) -> dict:
        _, kind, _ = RESOURCES[resource]
        labels = _parse_selector(query.get("labelSelector", [""])[0])
        fields = _parse_selector(query.get("fieldSelector", [""])[0])
        items = []
        for (r, ns, _), obj in sorted(self.objects.items(), key=lambda i: str(i[0])):
            if r != resource or (namespace is not None and ns != namespace):
                continue
            obj_labels = obj["metadata"].get("labels") or {}
            if any(obj_labels.get(k) != v for k, v in labels.items()):
                continue
            if any(_field(obj, k) != v for k, v in fields.items()):
                continue
            items.append(copy.deepcopy(obj))
        return {"kind": f"{kind}List", "apiVersion": RESOURCES[resource][0],
                "metadata": {"resourceVersion": str(self._resource_version)}, "items": items}

    def _pod_log(self, pod: dict | None, namespace: str, name: str, query: dict):
        if pod is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        logs = self.pod_logs.get((namespace, name), {})
        which = "previous" if query.get("previous", ["false"])[0] == "true" else "current"
        if which not in logs:
            container = pod["spec"]["containers"][0]["name"]
            raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found'
                           if which == "previous" else f'container "{container}" in pod "{name}" is waiting to start')
        lines = logs[which]
        tail = query.get("tailLines")
        if tail:
            lines = lines[-int(tail[0]):]
        return 200, "".join(line + "\n" for line in lines)


def _parse_selector(text: str) -> dict:
    selector = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        selector[key.strip()] = value.strip().lstrip("=")
    return selector


def _field(obj: dict, dotted: str):
    value = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubernetes
    protocol_version = "HTTP/1.1"
    # Send headers and body in one segment; otherwise Nagle plus delayed ACKs add ~40 ms per request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        content_type = self.headers.get("Content-Type", "")
        self.fake.requests.append((self.command, url.path, content_type))
        try:
            if self.headers.get("Authorization") != f"Bearer {self.fake.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            code, payload = self.fake.handle(self.command, url.path, parse_qs(url.query), content_type, body)
        except ApiError as exc:
            code, payload = exc.code, exc.status()
        if isinstance(payload, str):
            data, mime = payload.encode(), "text/plain"
        else:
            data, mime = json.dumps(payload).encode(), "application/json"
        self.send_response(code)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
