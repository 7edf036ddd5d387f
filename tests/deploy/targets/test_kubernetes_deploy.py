"""Deploy, watch, fail, roll back and re-apply through the official client against the fake API server."""

from __future__ import annotations

import pytest

from deploy.targets.base import Revision, TargetError, deploy_revision

from .conftest import revision_for

NS = "agent-staging"


def test_deploy_creates_every_object_and_waits_for_the_rollout(cluster, target, stage_log):
    revision = revision_for("v3.3.0")

    applied = target.apply(revision)
    rollout = target.watch_rollout(revision)

    assert [(c.kind, c.action) for c in applied.changes] == [
        ("Namespace", "created"), ("ResourceQuota", "created"), ("ConfigMap", "created"),
        ("Deployment", "created"), ("Service", "created"),
    ]
    assert rollout.ok and rollout.reason == "Complete"
    assert (rollout.desired_replicas, rollout.updated_replicas, rollout.available_replicas) == (4, 4, 4)
    deployment = cluster.get("deployments", NS, "agent-core")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/agent/agent-core:v3.3.0"
    assert container["env"] == [{"name": "AGENT_ENV", "value": "staging"}, {"name": "LOG_LEVEL", "value": "debug"}]
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "agents"}
    assert deployment["spec"]["template"]["metadata"]["labels"]["version"] == "v3.3.0"
    assert cluster.get("resourcequotas", NS, "agent-core-quota")["spec"]["hard"]["limits.memory"] == "16Gi"
    assert cluster.get("configmaps", NS, "agent-core-config")["data"] == {"MODEL_ENDPOINT": "http://model.dev:9000"}
    assert len([p for p in cluster.list("pods", NS) if p["metadata"]["labels"]["version"] == "v3.3.0"]) == 4
    assert any("rollout complete" in line for line in stage_log)


def test_applying_the_same_revision_twice_changes_nothing(cluster, target):
    revision = revision_for("v3.3.0")
    target.apply(revision)
    assert target.watch_rollout(revision).ok
    before = cluster.get("deployments", NS, "agent-core")["metadata"]
    writes_before = [r for r in cluster.requests if r[0] in ("POST", "PUT", "PATCH")]

    again = target.apply(Revision.from_json(revision.to_json()))

    after = cluster.get("deployments", NS, "agent-core")["metadata"]
    assert not again.changed
    assert {c.action for c in again.changes} == {"unchanged"}
    assert after["generation"] == before["generation"]
    assert after["resourceVersion"] == before["resourceVersion"]
    assert [r for r in cluster.requests if r[0] in ("POST", "PUT", "PATCH")] == writes_before


def test_changed_revision_bumps_generation_once(cluster, target):
    target.apply(revision_for("v3.3.0"))
    generation = cluster.get("deployments", NS, "agent-core")["metadata"]["generation"]

    result = target.apply(revision_for("v3.3.1"))

    assert [c.name for c in result.changes if c.action == "updated"] == ["agent-core"]
    assert cluster.get("deployments", NS, "agent-core")["metadata"]["generation"] == generation + 1


def test_apply_is_server_side_apply_with_a_field_manager_and_keeps_fields_others_own(cluster, target):
    target.apply(revision_for("v3.3.0"))
    # Another controller annotates the Deployment (kubectl annotate, an autoscaler): not Rollgate's field.
    cluster.put_object  # noqa: B018 (the fake's objects are edited in place below, as another manager would)
    with cluster.lock:
        live = cluster.objects[("deployments", NS, "agent-core")]
        live["metadata"].setdefault("annotations", {})["team.example.com/owner"] = "search"

    target.apply(revision_for("v3.3.1"))

    applies = [r for r in cluster.requests if r[0] == "PATCH" and r[1].endswith("/deployments/agent-core")]
    assert applies and all(r[2].startswith("application/apply-patch+yaml") for r in applies)
    assert not [r for r in cluster.requests if r[0] == "PUT"]  # no read-modify-replace any more
    deployment = cluster.get("deployments", NS, "agent-core")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v3.3.1")
    assert deployment["metadata"]["annotations"]["team.example.com/owner"] == "search"
    assert [f["manager"] for f in deployment["metadata"]["managedFields"]] == ["rollgate"]


def test_namespace_is_not_created_when_the_environment_forbids_it(cluster, make_target):
    target = make_target(cluster, allow_namespace_create=False)

    with pytest.raises(TargetError, match="namespace agent-staging does not exist"):
        target.apply(revision_for("v3.3.0"))
    assert cluster.get("namespaces", None, "agent-staging") is None


def test_existing_namespace_is_used_without_create_permission(cluster, make_target):
    cluster.put_object("namespaces", {"metadata": {"name": "agent-staging"}})
    target = make_target(cluster, allow_namespace_create=False)

    result = target.apply(revision_for("v3.3.0"))

    assert result.changes[0].kind == "Namespace" and result.changes[0].action == "skipped"
    assert target.watch_rollout(revision_for("v3.3.0")).ok


def test_crash_looping_release_is_rolled_back_to_the_last_good_revision(cluster, target, stage_log):
    good = revision_for("v3.3.0")
    target.apply(good)
    assert target.watch_rollout(good).ok
    cluster.fail_image("v3.3.1", "crashloop", ["INFO boot", "panic: cannot load tokenizer /models/tok.json"])
    bad = revision_for("v3.3.1")

    outcome = deploy_revision(target, bad, last_good=good, auto_rollback=True, log=stage_log.append)

    assert outcome.status == "rolled_back"
    assert outcome.rollout.reason == "CrashLoopBackOff"
    diagnostics = "\n".join(outcome.rollout.diagnostics)
    assert "BackOff" in diagnostics and "Back-off restarting failed container" in diagnostics
    assert "panic: cannot load tokenizer /models/tok.json" in diagnostics
    assert "panic: cannot load tokenizer /models/tok.json" in "\n".join(stage_log)
    assert outcome.rollback_rollout is not None and outcome.rollback_rollout.ok
    deployment = cluster.get("deployments", NS, "agent-core")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v3.3.0")
    pods = cluster.list("pods", NS)
    assert {p["metadata"]["labels"]["version"] for p in pods} == {"v3.3.0"}
    assert len(pods) == 4


def test_failed_rollout_stays_failed_when_auto_rollback_is_off(cluster, target, stage_log):
    good = revision_for("v3.3.0")
    target.apply(good)
    target.watch_rollout(good)
    cluster.fail_image("v3.3.1", "crashloop")

    outcome = deploy_revision(target, revision_for("v3.3.1"), last_good=good, auto_rollback=False, log=stage_log.append)

    assert outcome.status == "failed" and outcome.rollback_rollout is None
    assert "auto-rollback is off" in stage_log[-1]
    # maxUnavailable 0: the old version kept serving while the new one crashed.
    assert cluster.get("deployments", NS, "agent-core")["status"]["availableReplicas"] == 4


@pytest.mark.parametrize(
    ("mode", "reason", "evidence"),
    [
        ("imagepull", "ImagePullBackOff", "Failed to pull image"),
        ("probe", "ProbeFailing", "Readiness probe failed"),
        ("pending", "ProgressDeadlineExceeded", "Insufficient cpu"),
    ],
)
def test_rollout_failure_is_named_and_explained(cluster, target, mode, reason, evidence):
    cluster.fail_image("v9.9.9", mode)
    revision = revision_for("v9.9.9", progress_deadline_seconds=6)  # 6 s scaled by the fake to 0.3 s

    target.apply(revision)
    rollout = target.watch_rollout(revision)

    assert not rollout.ok
    assert rollout.reason == reason
    assert evidence in "\n".join(rollout.diagnostics)


def test_rollout_that_never_finishes_times_out(cluster, target):
    cluster.fail_image("v9.9.9", "pending")
    revision = revision_for("v9.9.9", progress_deadline_seconds=600)

    target.apply(revision)
    rollout = target.watch_rollout(revision, timeout_seconds=0.3)

    assert (rollout.ok, rollout.reason) == (False, "Timeout")
    assert "FailedScheduling" in "\n".join(rollout.diagnostics)


def test_rollback_to_a_chosen_revision_reapplies_exactly_its_manifests(cluster, target):
    history = []
    for tag, log_level in (("v3.1.0", None), ("v3.2.0", "debug"), ("v3.3.0", "trace")):
        overlay = {"replicaCount": 3, "env": [{"name": "AGENT_ENV", "value": "staging"}]}
        if log_level:
            overlay["env"].append({"name": "LOG_LEVEL", "value": log_level})
            overlay["configMap"] = {"data": {"MODEL_ENDPOINT": f"http://model-{tag}:9000"}}
        revision = revision_for(tag, overlay=overlay)
        target.apply(revision)
        assert target.watch_rollout(revision).ok
        history.append(revision.to_json())  # what the lead stores per revision row

    chosen = Revision.from_json(history[0])
    target.apply(chosen)
    assert target.watch_rollout(chosen).ok

    live = cluster.get("deployments", NS, "agent-core")
    rendered = chosen.manifests[[m["kind"] for m in chosen.manifests].index("Deployment")]
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "AGENT_ENV", "value": "staging"}]
    assert live["spec"]["template"] == {**rendered["spec"]["template"], "spec": {
        **rendered["spec"]["template"]["spec"], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "containers": [{**rendered["spec"]["template"]["spec"]["containers"][0],
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}]}}
    assert cluster.get("configmaps", NS, "agent-core-config")["data"] == {"MODEL_ENDPOINT": "http://model.dev:9000"}
    assert {p["metadata"]["labels"]["version"] for p in cluster.list("pods", NS)} == {"v3.1.0"}


def test_revision_survives_a_json_round_trip_unchanged():
    revision = revision_for("v3.3.0")

    restored = Revision.from_json(revision.to_json())

    assert restored == revision
    assert restored.digest == revision.digest
    assert revision_for("v3.3.1").digest != revision.digest


def test_pods_meet_the_restricted_pod_security_level_and_pull_with_the_secrets_from_values(cluster, target):
    cluster.put_object("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    revision = revision_for("v3.4.0", overlay={"imagePullSecrets": ["registry-pull"],
                                               "securityContext": {"runAsUser": 10001}})

    outcome = deploy_revision(target, revision, last_good=None, auto_rollback=True, log=lambda *_: None,
                              timeout_seconds=5)

    assert outcome.status == "deployed"
    pod = cluster.get("deployments", NS, "agent-core")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "registry-pull"}]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"},
                                      "runAsUser": 10001}
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_fake_cluster_refuses_a_pod_that_breaks_the_restricted_level(cluster, target):
    """The check above is not vacuous: a pod without the restricted settings is refused, with the rule named."""
    cluster.put_object("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": NS, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    revision = revision_for("v3.4.1")
    deployment = next(m for m in revision.manifests if m["kind"] == "Deployment")
    del deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]

    with pytest.raises(TargetError, match="violates PodSecurity .*allowPrivilegeEscalation"):
        target.apply(revision)


def test_values_refuse_running_as_root_and_bad_pull_secret_names():
    from deploy.targets.values import ValuesError, validate_values

    with pytest.raises(ValuesError, match="securityContext.runAsUser.*root"):
        validate_values({"securityContext": {"runAsUser": 0}}, partial=True)
    with pytest.raises(ValuesError, match=r"imagePullSecrets\[0\]"):
        validate_values({"imagePullSecrets": ["Registry_Pull"]}, partial=True)
