"""Gray weights with a header match, go-live, release rollback and blue-green switching, driven by release
transitions: the receivers queue the traffic tasks (run eagerly here), the tasks call the kubernetes driver."""
import pytest

from deploy.models import DeployRevision
from deploy.targets.manifests import COLOUR_LABEL
from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from releases.services import Actor, release_promote, release_rollback, release_worker_transition
from tests.deploy.conftest import NS, kube_environment, promote_and_deploy

pytestmark = pytest.mark.django_db(transaction=True)


def rows(service, env):
    return [(r.number, r.status, r.track, r.colour, r.image_tag, r.description)
            for r in DeployRevision.objects.filter(service=service, environment=env).order_by("number")]


def weighted(cluster):
    routes = cluster.get("virtualservices", NS, "agent-infer")["spec"]["http"]
    return [(r["destination"]["host"].split(".")[0], r["weight"]) for r in routes[-1]["route"]]


@pytest.fixture
def gray_release(staging, make_release, rm, stage_log):
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    release = make_release("v1.1.0-gray-A", "staging")
    Release.objects.filter(pk=release.pk).update(gray_rules={"gray_tag": "gray-phase-A"})
    promote_and_deploy(release, rm, stage_log)
    return release


def test_canary_rolls_out_and_gets_the_first_gray_weight_with_the_header_match(gray_release, service, staging,
                                                                             cluster):
    assert (gray_release.status, gray_release.gray_weight) == (ReleaseStatus.GRAY, 5)
    canary = cluster.get("deployments", NS, "agent-infer-canary")
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.1.0-gray-A")
    assert canary["spec"]["replicas"] == 1  # canary_replicas, not the stable pool
    routes = cluster.get("virtualservices", NS, "agent-infer")["spec"]["http"]
    assert routes[0]["match"] == [{"headers": {"x-gray-tag": {"exact": "gray-phase-A"}}}]
    assert weighted(cluster) == [("agent-infer-stable", 95), ("agent-infer-canary", 5)]
    assert [r[1:3] for r in rows(service, staging)] == [("deployed", "stable"), ("deployed", "canary")]


def test_promotion_moves_the_weights_and_go_live_makes_the_canary_stable(gray_release, service, staging, cluster, rm):
    release_promote(actor=Actor.of(rm), release_id=gray_release.pk, expected_weight=5)
    assert weighted(cluster) == [("agent-infer-stable", 90), ("agent-infer-canary", 10)]

    release_promote(actor=Actor.of(rm), release_id=gray_release.pk, full=True, expected_weight=10)

    gray_release.refresh_from_db()
    assert gray_release.status == ReleaseStatus.LIVE
    stable = cluster.get("deployments", NS, "agent-infer")
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.1.0-gray-A")
    assert stable["spec"]["replicas"] == 4
    assert cluster.get("deployments", NS, "agent-infer-canary")["spec"]["replicas"] == 0
    assert weighted(cluster) == [("agent-infer-stable", 100), ("agent-infer-canary", 0)]
    assert [r[1:3] + (r[4],) for r in rows(service, staging)] == [
        ("superseded", "stable", "v1.0.0"), ("superseded", "canary", "v1.1.0-gray-A"),
        ("deployed", "stable", "v1.1.0-gray-A")]


def test_rolling_back_a_canary_cuts_its_traffic_and_scales_it_down(gray_release, service, staging, cluster, rm):
    release_rollback(actor=Actor.of(rm), release_id=gray_release.pk, comment="error rate")

    assert weighted(cluster) == [("agent-infer-stable", 100), ("agent-infer-canary", 0)]
    assert cluster.get("deployments", NS, "agent-infer-canary")["spec"]["replicas"] == 0
    assert [r[1:3] for r in rows(service, staging)] == [("deployed", "stable"), ("rolled_back", "canary")]


def test_a_canary_blocked_by_the_sla_gate_loses_its_traffic_on_the_cluster(gray_release, cluster):
    assert release_worker_transition(release_id=gray_release.pk, from_statuses={ReleaseStatus.GRAY},
                                     to_status=ReleaseStatus.BLOCKED, actor_name="sla-gate",
                                     action="sla.block_version", reason="50 failed traces", gray_weight=0)

    assert weighted(cluster) == [("agent-infer-stable", 100), ("agent-infer-canary", 0)]
    assert cluster.get("deployments", NS, "agent-infer-canary")["spec"]["replicas"] == 0


def test_rolling_back_a_live_release_reapplies_the_revision_it_replaced(staging, service, make_release, rm, ops,
                                                                      cluster, stage_log):
    first = make_release("v1.0.0", "staging")
    promote_and_deploy(first, rm, stage_log)
    second = make_release("v1.1.0", "staging")
    promote_and_deploy(second, rm, stage_log, full=True)
    assert second.status == ReleaseStatus.LIVE

    release_rollback(actor=Actor.of(ops), release_id=second.pk, comment="bad answers")

    image = cluster.get("deployments", NS, "agent-infer")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":v1.0.0")
    assert rows(service, staging)[-1] == (3, "deployed", "stable", "", "v1.0.0", "rollback to 1")
    assert rows(service, staging)[1][1] == "rolled_back"
    assert DeployRevision.objects.get(number=3).actor_name == "ops"


def test_without_istio_the_gray_weight_becomes_a_replica_ratio(environments, make_cluster, ops, service,
                                                             eager_tasks, make_release, rm, stage_log):
    import yaml

    from deploy import services as deploy_services
    from tests.deploy.targets.conftest import BASE_VALUES, STAGING_VALUES

    fake = make_cluster(istio=False)
    staging = kube_environment(environments["staging"], fake, ops)
    deploy_services.values_update(actor=Actor.of(ops), service=service.name, text=yaml.safe_dump(BASE_VALUES))
    deploy_services.values_update(actor=Actor.of(ops), service=service.name, environment="staging",
                                  text=yaml.safe_dump(STAGING_VALUES))
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    canary = make_release("v1.1.0", "staging")
    promote_and_deploy(canary, rm, stage_log)
    assert staging.name == "staging" and canary.gray_weight == 5

    release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=5)
    release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=10)  # 30 %

    assert fake.get("deployments", NS, "agent-infer-canary")["spec"]["replicas"] == 1
    assert fake.get("deployments", NS, "agent-infer")["spec"]["replicas"] == 3
    assert fake.list("virtualservices") == []


# --- blue-green ------------------------------------------------------------------------------------------------


@pytest.fixture
def blue_green(staging, cluster, ops):
    staging.target_settings = {**staging.target_settings, "strategy": "blue_green",
                               "idle_scale_down_delay_seconds": 0}
    staging.save(update_fields=["target_settings"])
    return staging


def selector_colour(cluster):
    return cluster.get("services", NS, "agent-infer")["spec"]["selector"].get(COLOUR_LABEL)


def test_blue_green_switches_the_service_in_one_patch_and_scales_the_idle_colour_down(
        blue_green, service, make_release, rm, cluster, stage_log):
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    assert selector_colour(cluster) == "blue"
    second = make_release("v1.1.0", "staging")
    def selector_patches():  # the colour switch is a merge patch; applying the revision is server-side apply
        return [r for r in cluster.requests if r[0] == "PATCH" and r[1].endswith("/services/agent-infer")
                and r[2].startswith("application/merge-patch+json")]

    patches_before = selector_patches()
    assert patches_before == []
    assert promote_and_deploy(second, rm, stage_log, full=True) == "succeeded"

    second.refresh_from_db()
    assert second.status == ReleaseStatus.LIVE
    assert selector_colour(cluster) == "green"
    patches = selector_patches()
    assert len(patches) == 1
    # idle_scale_down_delay_seconds is 0 here: the scheduled task has already scaled blue down.
    assert cluster.get("deployments", NS, "agent-infer-blue")["spec"]["replicas"] == 0
    assert cluster.get("deployments", NS, "agent-infer-green")["spec"]["replicas"] == 4
    assert [(r[1], r[3], r[4]) for r in rows(service, blue_green)] == [
        ("superseded", "blue", "v1.0.0"), ("deployed", "green", "v1.1.0")]


def test_blue_green_rollback_switches_back_to_the_previous_colour(blue_green, service, make_release, rm, ops,
                                                                cluster, stage_log):
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    second = make_release("v1.1.0", "staging")
    promote_and_deploy(second, rm, stage_log, full=True)
    assert selector_colour(cluster) == "green"

    release_rollback(actor=Actor.of(ops), release_id=second.pk, comment="latency")

    assert selector_colour(cluster) == "blue"
    blue = cluster.get("deployments", NS, "agent-infer-blue")
    assert blue["spec"]["replicas"] == 4 and blue["status"]["availableReplicas"] == 4  # re-applied before the switch
    assert rows(service, blue_green)[-1][1:] == ("deployed", "stable", "blue", "v1.0.0", "rollback to 1")


def test_blue_green_switch_is_refused_when_the_new_colour_is_not_healthy_and_the_release_is_rolled_back(
        blue_green, service, make_release, rm, cluster, stage_log):
    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    second = make_release("v1.1.0", "staging")
    # 5 %: green rolls out, traffic stays on blue
    assert promote_and_deploy(second, rm, stage_log) == "succeeded"
    assert selector_colour(cluster) == "blue"
    # green loses its pods before go-live: the replacement pods crash.
    cluster.fail_image("v1.1.0", "crashloop")
    for pod in cluster.list("pods", NS):
        if pod["metadata"]["labels"].get(COLOUR_LABEL) == "green":
            cluster.delete_object("pods", NS, pod["metadata"]["name"])
    import time

    deadline = time.monotonic() + 5
    while cluster.get("deployments", NS, "agent-infer-green")["status"].get("availableReplicas", 0) and \
            time.monotonic() < deadline:
        time.sleep(0.02)

    release_promote(actor=Actor.of(rm), release_id=second.pk, full=True, expected_weight=5)

    second.refresh_from_db()
    assert selector_colour(cluster) == "blue"
    assert second.status == ReleaseStatus.ROLLED_BACK
    assert "switch to green refused" in second.status_reason
    assert AuditEvent.objects.filter(release=second, action="release.rollback", actor_name="deploy").exists()


def test_rollback_while_the_canary_rolls_out_cancels_it_and_never_touches_or_downgrades_the_stable(
        staging, service, make_release, rm, ops, cluster, stage_log):
    from deploy import drivers
    from deploy.drivers.kubernetes import KubernetesDriver
    from deploy.models import Rollout, RolloutStatus

    promote_and_deploy(make_release("v1.0.0", "staging"), rm, stage_log)
    stable_before = cluster.get("deployments", NS, "agent-infer")
    writes_before = len(cluster.requests)

    class RolledBackMidway(KubernetesDriver):
        """The real driver; the person's rollback lands after the canary is applied, before the rollout reports."""

        def rollout(self, *, release_id, log):
            outcome = super().rollout(release_id=release_id, log=log)
            release_rollback(actor=Actor.of(ops), release_id=release_id, comment="wrong build")
            return outcome

    real = drivers.driver_for("kubernetes")
    drivers.register_driver("kubernetes", RolledBackMidway())
    try:
        canary = make_release("v1.1.0", "staging")
        promote_and_deploy(canary, rm, stage_log)
    finally:
        drivers.register_driver("kubernetes", real)

    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.ROLLED_BACK
    assert Rollout.objects.get(release=canary).status == RolloutStatus.CANCELLED
    assert cluster.get("deployments", NS, "agent-infer-canary")["spec"]["replicas"] == 0  # no canary pod left
    stable = cluster.get("deployments", NS, "agent-infer")
    assert stable["metadata"]["resourceVersion"] == stable_before["metadata"]["resourceVersion"]
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.0.0")
    stable_writes = [r for r in cluster.requests[writes_before:]
                     if r[0] in ("PUT", "PATCH", "POST") and r[1].endswith("/deployments/agent-infer")]
    assert stable_writes == []
    history = rows(service, staging)
    assert not any(r[5].startswith("rollback to") for r in history)  # nothing re-applied, nothing older
    assert [r[1:3] for r in history if r[4] == "v1.1.0"] == [("rolled_back", "canary")]
