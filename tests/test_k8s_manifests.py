"""The Kubernetes manifests for Rollgate itself (k8s/, kustomize), rendered by the real `kubectl kustomize` and
checked: every process is there (web, worker, gate-worker, one beat, the migration Job), pods meet the restricted
Pod Security Standard, probes use the separate health endpoints, PostgreSQL and Redis come from a Secret, and the
RBAC grants exactly what the Kubernetes deploy target's code calls."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ["dev", "prod"]


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the manifests are rendered with `kubectl kustomize`")
    result = subprocess.run([kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def all_of(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]  # RoleBindings share a name across namespaces


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    specs = {name: doc["spec"]["template"]["spec"] for name, doc in by_kind(docs, "Deployment").items()}
    specs.update({name: doc["spec"]["template"]["spec"] for name, doc in by_kind(docs, "Job").items()})
    return specs


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    return request.param, render(request.param)


def test_every_process_is_deployed(rendered):
    overlay, docs = rendered
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"rollgate-web", "rollgate-worker", "rollgate-gate-worker", "rollgate-beat"}
    assert "rollgate-migrate" in by_kind(docs, "Job")
    assert by_kind(docs, "Service")["rollgate"]["spec"]["ports"][0]["targetPort"] == "http"
    ingress = by_kind(docs, "Ingress")["rollgate"]
    assert ingress["spec"]["tls"] and ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"][
        "name"] == "rollgate"
    commands = {name: " ".join(doc["spec"]["template"]["spec"]["containers"][0]["command"])
                for name, doc in deployments.items()}
    assert "-Q celery" in commands["rollgate-worker"] and "-Q gate" in commands["rollgate-gate-worker"]
    assert "celery" in commands["rollgate-beat"] and " beat" in commands["rollgate-beat"]
    assert deployments["rollgate-web"]["spec"]["replicas"] == {"dev": 1, "prod": 3}[overlay]
    images = {c["image"] for spec in pod_specs(docs).values() for c in spec["containers"] + spec.get(
        "initContainers", [])}
    assert images == {f"registry.example.com/platform/rollgate:{ {'dev': 'dev', 'prod': '1.0.0'}[overlay] }"}


def test_one_beat_that_is_never_doubled_by_a_rollout(rendered):
    _, docs = rendered
    beat = by_kind(docs, "Deployment")["rollgate-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    probe = beat["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]["command"]
    assert probe == ["python", "-m", "config.beat_lock", "--check"]  # the Redis lease (tests/test_beat_lock.py)


def test_pods_meet_the_restricted_pod_security_standard(rendered):
    _, docs = rendered
    assert by_kind(docs, "Namespace")["rollgate"]["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
    for name, spec in pod_specs(docs).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"]
            assert context["readOnlyRootFilesystem"] is True
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert {"/tmp", "/app/var"} <= mounts  # the only writable places
        assert not spec.get("hostNetwork") and not spec.get("hostPID")


def test_probes_use_the_separate_health_endpoints(rendered):
    _, docs = rendered
    web = by_kind(docs, "Deployment")["rollgate-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/api/health/live"
    assert web["readinessProbe"]["httpGet"]["path"] == "/api/health/ready"
    env = {item["name"]: item.get("value") for item in web["env"]}
    assert env["ALLOWED_HOSTS"] == "$(ROLLGATE_PUBLIC_HOST),$(POD_IP)"  # kubelet and Prometheus use the pod IP
    for name in ("rollgate-worker", "rollgate-gate-worker"):
        container = by_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
        assert "inspect ping" in " ".join(container["livenessProbe"]["exec"]["command"])


def test_database_and_redis_come_from_a_secret_the_operator_creates(rendered):
    _, docs = rendered
    assert not by_kind(docs, "Secret")  # nothing secret is rendered from the repository
    config = by_kind(docs, "ConfigMap")["rollgate"]["data"]
    assert config["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert not {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ROLLGATE_CREDENTIALS_KEY"} & set(config)
    for name, spec in pod_specs(docs).items():
        for container in spec["containers"]:
            sources = container["envFrom"]
            assert {"secretRef": {"name": "rollgate"}} in sources and {"configMapRef": {"name": "rollgate"}} in sources


# --- RBAC: exactly what deploy/targets/k8s_api.py calls ------------------------------------------------------------

VERBS = {"read": "get", "get": "get", "create": "create", "patch": "patch", "list": "list", "replace": "update",
         "delete": "delete"}
RESOURCES = {"config_map": "configmaps", "resource_quota": "resourcequotas", "service": "services",
             "deployment": "deployments", "namespace": "namespaces", "pod": "pods", "event": "events",
             "pod_log": "pods/log"}


def permissions_the_code_needs() -> set[tuple[str, str]]:
    source = (ROOT / "deploy" / "targets" / "k8s_api.py").read_text()
    needed = set()
    for verb, resource in re.findall(r"(?:core|apps|self\.core|self\.apps)\.(read|create|patch|list|replace|delete)"
                                     r"_(?:namespaced_)?(\w+?)\b", source):
        needed.add((RESOURCES[resource], VERBS[verb]))
    for verb, _plural in re.findall(r"custom\.(get|create|patch|delete)_namespaced_custom_object\(.*?\"(\w+)\"",
                                    source):
        needed.add(("virtualservices", VERBS[verb]))
    return needed


def permissions_granted(docs: list[dict], account: str) -> set[tuple[str, str]]:
    roles = by_kind(docs, "ClusterRole")
    bound = {binding["roleRef"]["name"] for binding in all_of(docs, "RoleBinding")
             if any(s["name"] == account for s in binding["subjects"])}
    bound |= {binding["roleRef"]["name"] for binding in by_kind(docs, "ClusterRoleBinding").values()
              if any(s["name"] == account for s in binding["subjects"])}
    granted = set()
    for name in bound:
        for rule in roles[name]["rules"]:
            granted |= {(resource, verb) for resource in rule["resources"] for verb in rule["verbs"]}
    return granted


def test_rbac_grants_exactly_what_the_deploy_target_calls(rendered):
    _, docs = rendered
    needed = permissions_the_code_needs()
    assert ("deployments", "patch") in needed and ("pods/log", "get") in needed  # the scan found the calls
    granted = permissions_granted(docs, "rollgate-deployer")
    # namespaces: read only (the agent namespaces are created by these manifests, allow_namespace_create stays off)
    assert granted == needed - {("namespaces", "create"), ("namespaces", "patch")}
    assert not any("*" in resource or "*" in verb or resource == "secrets" for resource, verb in granted)
    namespaces = by_kind(docs, "ClusterRole")["rollgate-read-agent-namespaces"]["rules"][0]
    assert namespaces["resourceNames"] == ["agent-dev", "agent-test", "agent-staging", "agent-prod"]
    # the deploy rights hold in the agent namespaces only, never cluster-wide
    assert sorted(b["metadata"]["namespace"] for b in all_of(docs, "RoleBinding")) == sorted({
        "agent-dev", "agent-test", "agent-staging", "agent-prod"})
    assert all(b["roleRef"]["name"] != "rollgate-deploy-target" for b in by_kind(docs, "ClusterRoleBinding").values())


def test_only_the_workers_get_a_kubernetes_token(rendered):
    _, docs = rendered
    for name, spec in pod_specs(docs).items():
        deployer = name in ("rollgate-worker", "rollgate-gate-worker")
        assert spec["serviceAccountName"] == ("rollgate-deployer" if deployer else "rollgate-web"), name
        assert spec["automountServiceAccountToken"] is deployer, name


def test_the_migration_job_migrates_as_the_owner_and_refreshes_the_app_role(rendered):
    _, docs = rendered
    job = by_kind(docs, "Job")["rollgate-migrate"]["spec"]["template"]["spec"]
    container = job["containers"][0]
    script = " ".join(container["command"])
    assert "manage.py migrate --noinput" in script and 'db_app_role "$ROLLGATE_APP_DB_ROLE"' in script
    owner = next(item for item in container["env"] if item["name"] == "DATABASE_URL")
    assert owner["valueFrom"]["secretKeyRef"] == {"name": "rollgate", "key": "MIGRATE_DATABASE_URL", "optional": True}
    assert job["restartPolicy"] == "OnFailure" and by_kind(docs, "ConfigMap")["rollgate"]["data"][
        "ROLLGATE_APP_DB_ROLE"] == "rollgate_app"
