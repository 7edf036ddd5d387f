"""Gray traffic (Istio weights + header match, replica-ratio fallback) and blue-green switching."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from deploy.targets.base import TargetError
from deploy.targets.manifests import COLOUR_LABEL

from .conftest import revision_for

NS = "agent-staging"
GRAY_HEADER = {"x-gray-tag": "gray-phase-A"}


def deploy_stable_and_canary(target, stable_tag="v3.3.0", canary_tag="v3.3.1"):
    stable = revision_for(stable_tag)
    canary = revision_for(canary_tag, track="canary", overlay={"replicaCount": 1})
    for revision in (stable, canary):
        target.apply(revision)
        assert target.watch_rollout(revision).ok


def test_gray_weights_with_header_match_go_into_an_istio_virtual_service(cluster, target):
    deploy_stable_and_canary(target)

    result = target.set_traffic("agent-core", "staging", stable_tag="v3.3.0", canary_tag="v3.3.1",
                                weight=10, header_match=GRAY_HEADER)

    assert (result.mode, result.effective_weight) == ("istio", 10.0)
    virtual_service = cluster.get("virtualservices", NS, "agent-core")
    header_route, weighted_route = virtual_service["spec"]["http"]
    assert header_route["match"] == [{"headers": {"x-gray-tag": {"exact": "gray-phase-A"}}}]
    assert header_route["route"] == [{"destination": {"host": "agent-core-canary.agent-staging.svc.cluster.local"}, "weight": 100}]
    assert [(r["destination"]["host"].split(".")[0], r["weight"]) for r in weighted_route["route"]] == [
        ("agent-core-stable", 90), ("agent-core-canary", 10)]
    assert cluster.get("services", NS, "agent-core-canary")["spec"]["selector"] == {"app": "agent-core", "track": "canary"}
    assert cluster.get("services", NS, "agent-core-stable")["spec"]["selector"] == {"app": "agent-core", "track": "stable"}


def test_raising_the_gray_weight_updates_the_same_virtual_service(cluster, target):
    deploy_stable_and_canary(target)
    for weight in (5, 10, 30, 50):
        target.set_traffic("agent-core", "staging", stable_tag="v3.3.0", canary_tag="v3.3.1",
                           weight=weight, header_match=GRAY_HEADER)

    virtual_service = cluster.get("virtualservices", NS, "agent-core")
    assert [r["weight"] for r in virtual_service["spec"]["http"][1]["route"]] == [50, 50]
    assert virtual_service["metadata"]["generation"] == 4
    assert len(cluster.list("virtualservices", NS)) == 1


def test_without_istio_gray_weight_becomes_a_replica_ratio(make_cluster, make_target, stage_log):
    cluster = make_cluster(istio=False)
    target = make_target(cluster)
    deploy_stable_and_canary(target)

    result = target.set_traffic("agent-core", "staging", stable_tag="v3.3.0", canary_tag="v3.3.1",
                                weight=30, header_match=GRAY_HEADER)

    # Pool of 4 replicas (values replicaCount): 30 % rounds to 1 canary pod, 3 stable pods.
    assert (result.mode, result.canary_replicas, result.stable_replicas) == ("replica-ratio", 1, 3)
    assert result.effective_weight == 25.0
    assert cluster.get("deployments", NS, "agent-core-canary")["spec"]["replicas"] == 1
    assert cluster.get("deployments", NS, "agent-core")["spec"]["replicas"] == 3
    assert cluster.list("virtualservices") == []
    assert any("header match" in line and "cannot be honoured" in line for line in stage_log)

    half = target.set_traffic("agent-core", "staging", stable_tag="v3.3.0", canary_tag="v3.3.1", weight=50)
    assert (half.canary_replicas, half.stable_replicas, half.effective_weight) == (2, 2, 50.0)


def test_istio_mode_is_refused_when_the_crd_is_missing(make_cluster, make_target):
    cluster = make_cluster(istio=False)
    target = make_target(cluster, traffic_mode="istio")
    deploy_stable_and_canary(target)

    with pytest.raises(TargetError, match="does not serve networking.istio.io/v1beta1"):
        target.set_traffic("agent-core", "staging", stable_tag="v3.3.0", canary_tag="v3.3.1", weight=5)


def test_traffic_is_not_shifted_to_a_canary_running_another_version(cluster, target):
    deploy_stable_and_canary(target)

    with pytest.raises(TargetError, match="runs version 'v3.3.1', not 'v3.4.0'"):
        target.set_traffic("agent-core", "staging", stable_tag="v3.3.0", canary_tag="v3.4.0", weight=5)
    with pytest.raises(TargetError, match="whole percentage"):
        target.set_traffic("agent-core", "staging", stable_tag="v3.3.0", canary_tag="v3.3.1", weight=120)
    assert cluster.get("virtualservices", NS, "agent-core") is None


def deploy_colour(target, tag, colour):
    revision = revision_for(tag, colour=colour, overlay={"replicaCount": 2})
    target.apply(revision)
    assert target.watch_rollout(revision).ok
    return revision


def test_blue_green_switch_and_switch_back(cluster, make_target):
    now = datetime(2025, 5, 2, 23, 8, tzinfo=timezone.utc)
    target = make_target(cluster)
    target._clock = lambda: now  # a fixed "now" to check the scale-down due time
    deploy_colour(target, "v3.3.0", "blue")
    assert target.active_colour("agent-core", "staging") == "blue"
    deploy_colour(target, "v3.3.1", "green")
    # Applying the green revision did not move traffic: only the switch does.
    assert target.active_colour("agent-core", "staging") == "blue"
    # Creating the Service was a server-side apply; no merge patch (a selector switch) happened yet.
    service_writes_before = [r for r in cluster.requests if r[0] == "PATCH" and r[1].endswith("/services/agent-core")
                             and r[2] != "application/apply-patch+yaml"]
    assert service_writes_before == []

    switched = target.switch_blue_green("agent-core", "staging", to_colour="green")

    assert (switched.active, switched.previous) == ("green", "blue")
    assert switched.idle_scale_down_due_at == now + timedelta(seconds=120)
    selector = cluster.get("services", NS, "agent-core")["spec"]["selector"]
    assert selector == {"app": "agent-core", COLOUR_LABEL: "green"}
    patches = [r for r in cluster.requests if r[0] == "PATCH" and r[1].endswith("/services/agent-core")
               and r[2] != "application/apply-patch+yaml"]
    assert len(patches) == 1 and patches[0][2] == "application/merge-patch+json"

    back = target.switch_blue_green("agent-core", "staging", to_colour="blue")

    assert (back.active, back.previous) == ("blue", "green")
    assert cluster.get("services", NS, "agent-core")["spec"]["selector"][COLOUR_LABEL] == "blue"


def test_idle_colour_is_scaled_down_and_active_one_is_left_alone(cluster, target):
    deploy_colour(target, "v3.3.0", "blue")
    deploy_colour(target, "v3.3.1", "green")
    target.switch_blue_green("agent-core", "staging", to_colour="green")

    result = target.scale_down_idle("agent-core", "staging")

    assert (result.colour, result.scaled) == ("blue", True)
    assert cluster.get("deployments", NS, "agent-core-blue")["spec"]["replicas"] == 0
    assert cluster.get("deployments", NS, "agent-core-green")["spec"]["replicas"] == 2
    assert target.scale_down_idle("agent-core", "staging").scaled is False
    # A colour with no ready pods is never given traffic.
    with pytest.raises(TargetError, match="refusing to switch agent-core to blue: agent-core-blue is scaled down to 0 replicas"):
        target.switch_blue_green("agent-core", "staging", to_colour="blue")
    assert cluster.get("services", NS, "agent-core")["spec"]["selector"][COLOUR_LABEL] == "green"


def test_switch_to_a_colour_whose_rollout_failed_is_refused(cluster, target):
    deploy_colour(target, "v3.3.0", "blue")
    cluster.fail_image("v3.3.1", "crashloop")
    green = revision_for("v3.3.1", colour="green", overlay={"replicaCount": 2})
    target.apply(green)
    assert target.watch_rollout(green).reason == "CrashLoopBackOff"

    with pytest.raises(TargetError, match="refusing to switch agent-core to green: only 0 of 2 replicas available"):
        target.switch_blue_green("agent-core", "staging", to_colour="green")
    assert target.active_colour("agent-core", "staging") == "blue"
