"""One rule for everything that deploys or moves traffic: freeze windows, approvals and blocked images apply to
promote, resume, cut-over, routing rules and rollback to a revision alike; rollback and switch-back stay open."""
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from releases import policy
from releases.choices import ReleaseStatus
from releases.errors import ActionBlocked
from releases.services import Actor, release_promote, release_rollback, traffic_check
from routing.models import RoutingState
from tests.conftest import client_for

ROUTING = "/api/routing/agent-infer/staging/"


def freeze(env):
    now = timezone.now()
    env.freeze_windows = [{"start": (now - timedelta(hours=1)).isoformat(),
                           "end": (now + timedelta(hours=1)).isoformat(), "reason": "holiday"}]
    env.save(update_fields=["freeze_windows"])


@pytest.fixture
def canary(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.GRAY
    return release


def test_cut_over_in_a_freeze_is_refused_like_promote(canary, rm, environments):
    freeze(environments["staging"])

    response = client_for(rm).post(ROUTING + "cut-over/", {}, format="json")

    assert response.status_code == 409, response.content
    assert "frozen until" in response.json()["detail"] and "cut-over waits" in response.json()["detail"]
    assert client_for(rm).post(f"/api/releases/{canary.pk}/promote/", {}, format="json").status_code == 409
    assert not RoutingState.objects.filter(override="cut_over").exists()


def test_ops_who_may_not_promote_may_not_cut_over(canary, ops, rm):
    response = client_for(ops).post(ROUTING + "cut-over/", {}, format="json")
    assert response.status_code == 403
    assert "only release_manager may promote releases" in response.json()["detail"]
    assert client_for(rm).post(ROUTING + "cut-over/", {}, format="json").status_code == 200


def test_switch_back_and_rollback_to_the_stable_stay_allowed_in_a_freeze(canary, rm, ops, environments):
    assert client_for(rm).post(ROUTING + "cut-over/", {}, format="json").status_code == 200
    freeze(environments["staging"])

    assert client_for(ops).post(ROUTING + "switch-back/", {}, format="json").status_code == 200
    assert client_for(ops).post(f"/api/releases/{canary.pk}/rollback/", {}, format="json").status_code == 200
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.ROLLED_BACK


def test_routing_rules_are_frozen_too(canary, rm, environments):
    freeze(environments["staging"])
    response = client_for(rm).put(ROUTING + "rules/", {"rules": [{"tenants": ["acme"]}]}, format="json")
    assert response.status_code == 409 and "routing rules waits" in response.json()["detail"]


def test_unblocking_a_version_is_frozen_but_blocking_is_not(canary, ops, environments):
    freeze(environments["staging"])
    blocked = client_for(ops).post(ROUTING + "blocked-versions/", {"version": "v0.9.0", "reason": "leaks"},
                                   format="json")
    assert blocked.status_code in (200, 201), blocked.content
    response = client_for(ops).delete(ROUTING + "blocked-versions/v0.9.0/")
    assert response.status_code == 409 and "unblock a version waits" in response.json()["detail"]


def test_a_version_blocked_in_routing_is_never_promoted(make_release, live_release, ops, rm):
    release = make_release("v1.1.0", "staging")
    client_for(ops).post(ROUTING + "blocked-versions/", {"version": "v1.1.0", "reason": "crashes"}, format="json")

    response = client_for(rm).post(f"/api/releases/{release.pk}/promote/", {}, format="json")

    assert response.status_code == 409
    assert "v1.1.0 is blocked" in response.json()["detail"] and "crashes" in response.json()["detail"]


def test_a_blocked_release_image_is_never_deployed_again_in_any_environment(make_release, rm, service, environments):
    staging = make_release("v2.0.0", "staging")
    staging.status = ReleaseStatus.BLOCKED
    staging.status_reason = "SLA gate: 60 failed traces"
    staging.save()
    for move in (policy.MOVE_PROMOTE, policy.MOVE_REVISION_ROLLBACK, policy.MOVE_CUT_OVER, policy.MOVE_RULES):
        with pytest.raises(ActionBlocked, match="blocked in staging: SLA gate"):
            traffic_check(move=move, service=service, environment=environments["test"], tag="v2.0.0")


def test_rollback_to_a_revision_in_a_freeze_only_returns_to_a_version_that_was_live(
        live_release, canary, service, environments):
    staging = environments["staging"]
    freeze(staging)
    traffic_check(move=policy.MOVE_REVISION_ROLLBACK, service=service, environment=staging, tag="v1.0.0")
    with pytest.raises(ActionBlocked, match="v1.1.0 never was"):
        traffic_check(move=policy.MOVE_REVISION_ROLLBACK, service=service, environment=staging, tag="v1.1.0")


def test_rollback_to_a_revision_in_a_protected_environment_needs_an_image_that_went_live(service, environments):
    with pytest.raises(ActionBlocked, match="never had its approvals"):
        traffic_check(move=policy.MOVE_REVISION_ROLLBACK, service=service, environment=environments["prod"],
                      tag="v9.9.9")


def test_rolling_back_a_live_release_does_not_restore_a_blocked_image(live_release, make_release, rm, ops):
    newer = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=newer.pk, full=True)
    client_for(ops).post(ROUTING + "blocked-versions/", {"version": "v1.0.0", "reason": "CVE"}, format="json")
    with pytest.raises(ActionBlocked, match="v1.0.0 is blocked"):
        release_rollback(actor=Actor.of(rm), release_id=newer.pk)


def test_readme_carries_the_traffic_rule_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert policy.traffic_rules_markdown() in readme


def test_the_release_page_greys_promote_out_with_the_blocked_image_reason(make_release, live_release, ops, rm):
    from django.test import Client

    release = make_release("v1.1.0", "staging")
    client_for(ops).post(ROUTING + "blocked-versions/", {"version": "v1.1.0", "reason": "crashes"}, format="json")
    promote = client_for(rm).get(f"/api/releases/{release.pk}/").json()["actions"]["promote"]
    assert promote["allowed"] is False and "v1.1.0 is blocked" in promote["reason"]
    page = Client()
    page.force_login(rm)
    assert "v1.1.0 is blocked" in page.get(f"/releases/{release.pk}/").content.decode()
