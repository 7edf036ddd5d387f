"""Deploy, watch, fail-then-auto-rollback and the revision history, through the official client and the fake
API server, driven by release transitions as in production."""
import pytest

from deploy.models import DeployRevision
from releases.choices import ReleaseStatus
from tests.deploy.conftest import NS, promote_and_deploy

pytestmark = pytest.mark.django_db(transaction=True)


def history(service, env):
    return [(r.number, r.status, r.track, r.image_tag, r.description)
            for r in DeployRevision.objects.filter(service=service, environment=env).order_by("number")]


def image_of(cluster, name="agent-infer"):
    return cluster.get("deployments", NS, name)["spec"]["template"]["spec"]["containers"][0]["image"]


def test_first_release_deploys_the_stable_track_and_goes_live(staging, service, make_release, rm, cluster, stage_log):
    release = make_release("v1.0.0", "staging")

    outcome = promote_and_deploy(release, rm, stage_log)

    assert outcome == "succeeded"
    assert release.status == ReleaseStatus.LIVE
    assert image_of(cluster) == "registry.example.com/agent/agent-core:v1.0.0"
    deployment = cluster.get("deployments", NS, "agent-infer")
    assert deployment["spec"]["replicas"] == 4  # values-staging.yaml overrides the base replicaCount
    assert deployment["status"]["availableReplicas"] == 4
    assert history(service, staging) == [(1, "deployed", "stable", "v1.0.0", f"deploy v1.0.0 (release #{release.pk})")]
    row = DeployRevision.objects.get(number=1)
    assert row.actor_name == "rm" and row.rollout_reason == "Complete"
    assert any("rollout complete" in line for line in stage_log)


def test_failed_rollout_is_rolled_back_automatically_and_history_says_so(staging, service, make_release, rm,
                                                                       cluster, stage_log):
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    cluster.fail_image("v1.1.0", "crashloop", ["INFO boot", "panic: cannot load tokenizer /models/tok.json"])
    bad = make_release("v1.1.0", "staging")

    outcome = promote_and_deploy(bad, rm, stage_log, full=True)

    assert outcome == "failed"  # and the last good revision re-applied
    assert bad.status == ReleaseStatus.FAILED
    assert "CrashLoopBackOff" in bad.status_reason and "rolled back" in bad.status_reason
    log = "\n".join(stage_log)
    assert "panic: cannot load tokenizer /models/tok.json" in log  # kubectl logs of the crashing container
    assert "Back-off restarting failed container" in log  # kubectl describe pod events
    assert image_of(cluster).endswith(":v1.0.0")
    assert history(service, staging) == [
        (1, "superseded", "stable", "v1.0.0", "deploy v1.0.0 (release #1)".replace("#1", f"#{bad.pk - 1}")),
        (2, "failed", "stable", "v1.1.0", f"deploy v1.1.0 (release #{bad.pk})"),
        (3, "deployed", "stable", "v1.0.0", "rollback to 1"),
    ]
    assert DeployRevision.objects.get(number=3).digest == DeployRevision.objects.get(number=1).digest


def test_failed_rollout_stays_failed_without_auto_rollback(staging, service, make_release, rm, cluster, stage_log):
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    staging.auto_rollback = False
    staging.save(update_fields=["auto_rollback"])
    cluster.fail_image("v1.1.0", "imagepull")

    outcome = promote_and_deploy(make_release("v1.1.0", "staging"), rm, stage_log, full=True)

    assert outcome == "failed"
    assert [r[1] for r in history(service, staging)] == ["deployed", "failed"]
    assert any("auto-rollback is off" in line for line in stage_log)
