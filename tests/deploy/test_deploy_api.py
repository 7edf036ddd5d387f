"""The deploy API: values (validation with the path of the bad key, versions, audit), revision history,
rollback to a chosen revision, and write-only credentials."""
import pytest
import yaml

from deploy.models import DeployRevision, ServiceValues
from releases.models import AuditEvent
from tests.conftest import client_for
from tests.deploy.conftest import NS, promote_and_deploy

VALUES_URL = "/api/services/agent-infer/values/"
STAGING_VALUES_URL = "/api/services/agent-infer/environments/staging/values/"
REVISIONS_URL = "/api/services/agent-infer/environments/staging/revisions/"


@pytest.mark.django_db
@pytest.mark.parametrize("document, path, rule", [
    ({"replicaCount": -1}, "replicaCount", "must be a non-negative integer"),
    ({"resources": {"limits": {"memory": "2Gx"}}}, "resources.limits.memory", "must be a Kubernetes quantity"),
    ({"replicas": 3}, "replicas", "unknown key; allowed here: image, replicaCount"),
    ({"env": [{"name": "A", "value": 1}]}, "env[0].value", "must be a string"),
    ({"service": {"port": 70000}}, "service.port", "must be a port number from 1 to 65535"),
])
def test_invalid_values_are_refused_with_the_path_of_the_bad_key(environments, service, ops, document, path, rule):
    response = client_for(ops).put(STAGING_VALUES_URL, {"text": yaml.safe_dump(document)}, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == [path]
    assert response.json()["detail"].startswith(f"values-staging.yaml: {path}: {rule}")
    assert not AuditEvent.objects.filter(action="values.update").exists()


@pytest.mark.django_db
def test_values_that_break_the_merge_with_an_environment_are_refused(environments, service, ops):
    client = client_for(ops)
    assert client.put(STAGING_VALUES_URL, {"text": "resources:\n  limits: {memory: 1Gi}\n"},
                      format="json").status_code == 200

    response = client.put(VALUES_URL, {"text": "resources:\n  requests: {memory: 2Gi}\n"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"resources.requests.memory": [
        "merged values: resources.requests.memory: must not exceed resources.limits.memory"]}
    bad_yaml = client.put(VALUES_URL, {"text": "image: [unclosed"}, format="json")
    assert bad_yaml.status_code == 400 and bad_yaml.json()["errors"] == {"text": ["values.yaml: line 1: not valid YAML"]}


@pytest.mark.django_db
def test_values_are_versioned_and_every_change_is_audited(environments, service, ops, auditor, dev, rm):
    client = client_for(ops)
    first = client.put(VALUES_URL, {"text": "replicaCount: 2\n", "comment": "two replicas"}, format="json")
    second = client.put(VALUES_URL, {"text": "replicaCount: 3\n", "comment": "peak traffic"}, format="json")
    same = client.put(VALUES_URL, {"text": "replicaCount: 3\n"}, format="json")

    assert (first.json()["number"], second.json()["number"], same.json()["number"]) == (1, 2, 2)
    assert second.json()["author"] == "ops" and second.json()["comment"] == "peak traffic"
    history = client_for(auditor).get(VALUES_URL + "history/")
    assert [(v["number"], v["text"]) for v in history.json()] == [(2, "replicaCount: 3\n"), (1, "replicaCount: 2\n")]
    assert history["X-Total-Count"] == "2"
    audits = AuditEvent.objects.filter(action="values.update").order_by("id")
    assert [(a.actor_name, a.to_state, a.reason) for a in audits] == [("ops", "#1", "two replicas"),
                                                                       ("ops", "#2", "peak traffic")]
    assert "-replicaCount: 2\n+replicaCount: 3" in audits[1].details["diff"]
    assert client_for(dev).get(VALUES_URL).status_code == 403
    refused = client_for(rm).put(VALUES_URL, {"text": "replicaCount: 9\n"}, format="json")
    assert refused.status_code == 403 and "only ops may manage environments" in refused.json()["detail"]
    assert ServiceValues.objects.count() == 2

    env_values = client.put(STAGING_VALUES_URL, {"text": "replicaCount: 4\nnodeSelector: {pool: agents}\n"},
                            format="json")
    assert env_values.status_code == 200 and env_values.json()["number"] == 1
    merged = client_for(auditor).get(STAGING_VALUES_URL).json()["merged"]
    assert merged["replicaCount"] == 4 and merged["image"] == {
        "repository": "registry.example.com/agent/agent-core", "tag": "RELEASE_TAG"}
    assert client_for(ops).put(STAGING_VALUES_URL, {"text": "", "bogus": 1}, format="json").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_history_and_rollback_to_a_chosen_revision_through_the_api(staging, make_release, rm, ops, qa, cluster,
                                                                 stage_log):
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        promote_and_deploy(make_release(tag, "staging"), rm, stage_log, full=True)

    history = client_for(ops).get(REVISIONS_URL).json()
    assert [(r["revision"], r["status"], r["image_tag"]) for r in history] == [
        (3, "deployed", "v1.2.0"), (2, "superseded", "v1.1.0"), (1, "superseded", "v1.0.0")]
    assert client_for(qa).post(REVISIONS_URL + "1/rollback/", {}, format="json").status_code == 403

    response = client_for(rm).post(REVISIONS_URL + "1/rollback/", {"comment": "v1.1 and v1.2 both leak memory"},
                                   format="json")

    assert response.status_code == 202, response.content
    assert response.json() == {"queued": True, "rollback_to": 1, "image_tag": "v1.0.0"}
    latest = client_for(ops).get(REVISIONS_URL).json()[0]
    assert (latest["revision"], latest["status"], latest["description"], latest["who"], latest["rollback_of"]) == (
        4, "deployed", "rollback to 1", "rm", 1)
    assert DeployRevision.objects.get(number=4).revision_json == DeployRevision.objects.get(number=1).revision_json
    image = cluster.get("deployments", NS, "agent-infer")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":v1.0.0")
    audit = AuditEvent.objects.get(action="deploy.rollback_requested")
    assert (audit.actor_name, audit.reason) == ("rm", "v1.1 and v1.2 both leak memory")

    again = client_for(rm).post(REVISIONS_URL + "4/rollback/", {}, format="json")
    assert again.status_code == 409 and "what runs now" in again.json()["detail"]
    assert client_for(rm).post(REVISIONS_URL + "99/rollback/", {}, format="json").status_code == 404
    detail = client_for(ops).get(REVISIONS_URL + "1/").json()
    assert [m["kind"] for m in detail["manifests"]] == ["Namespace", "ResourceQuota", "ConfigMap", "Deployment", "Service"]


@pytest.mark.django_db(transaction=True)
def test_a_canary_revision_is_not_a_rollback_target(staging, make_release, rm, stage_log):
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    promote_and_deploy(make_release("v1.1.0", "staging"), rm, stage_log)

    response = client_for(rm).post(REVISIONS_URL + "2/rollback/", {}, format="json")

    assert response.status_code == 409
    assert "a canary revision is not a rollback target" in response.json()["detail"]


@pytest.mark.django_db
def test_credentials_are_write_only(environments, ops, auditor, rm):
    url = "/api/environments/staging/credentials/"
    assert client_for(auditor).get(url).json()["configured"] is False

    response = client_for(ops).put(url, {"kind": "token", "host": "https://10.0.0.1:6443",
                                         "token": "sa-token-write-only-0123456789"}, format="json")

    assert response.status_code == 200
    assert response.json() == {**response.json(), "configured": True, "kind": "token", "host": "https://10.0.0.1:6443"}
    assert "sa-token-write-only-0123456789" not in response.content.decode()
    assert "token" not in response.json()
    assert client_for(rm).put(url, {"kind": "token", "host": "https://x", "token": "t"},
                              format="json").status_code == 403
    bad = client_for(ops).put(url, {"kind": "kubeconfig", "kubeconfig": "apiVersion: v1\nusers: []\n"},
                              format="json")
    assert bad.status_code == 400 and bad.json()["errors"] == {"kubeconfig": ["kubeconfig: the kubeconfig has no clusters"]}
    no_host = client_for(ops).put(url, {"kind": "token", "token": "abcd"}, format="json")
    assert no_host.status_code == 400 and "host" in no_host.json()["errors"]


@pytest.mark.django_db
def test_credentials_are_refused_with_the_reason_when_no_encryption_key_is_configured(environments, ops, settings):
    settings.ROLLGATE_CREDENTIALS_KEY = ""

    response = client_for(ops).put("/api/environments/staging/credentials/",
                                   {"kind": "token", "host": "https://10.0.0.1:6443", "token": "abcdefgh"},
                                   format="json")

    assert response.status_code == 409
    assert "set ROLLGATE_CREDENTIALS_KEY (or ROLLGATE_CREDENTIALS_KEY_FILE)" in response.json()["detail"]


def test_an_unknown_service_or_environment_is_404_listing_the_known_names(staging, ops):
    api = client_for(ops)
    response = api.get("/api/services/agent-nope/values/")
    assert response.status_code == 404
    assert response.json()["detail"] == "no service named 'agent-nope'; known services: agent-infer"
    response = api.get("/api/services/agent-infer/environments/moon/revisions/")
    assert response.status_code == 404
    assert response.json()["detail"] == "no environment named 'moon'; environments: dev, test, staging, prod"
