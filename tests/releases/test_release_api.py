"""The REST contract scripts and CI jobs rely on, and what bad input gets back."""
import json

import pytest
from rest_framework.test import APIClient

from releases.choices import ReleaseStatus as S
from releases.models import AuditEvent, Release
from tests.conftest import client_for, sha


def create(client, **overrides):
    body = {"service": "agent-infer", "environment": "staging", "tag": "v0.1.0", "commit": sha()}
    body.update(overrides)
    return client.post("/api/releases/", body, format="json")


def test_ci_job_gets_a_token_creates_a_release_and_finds_it_in_the_list(environments, service, dev):
    anonymous = APIClient()
    token = anonymous.post("/api/auth/token/", {"username": "dev", "password": "pw-dev"}, format="json")
    assert token.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert [s["name"] for s in client.get("/api/services/").json()] == ["agent-infer"]
    assert [e["name"] for e in client.get("/api/environments/").json()] == ["dev", "test", "staging", "prod"]
    response = create(client, branch="release/v0.1.0")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["status"] == "pending" and created["tag"] == "v0.1.0"
    listed = client.get("/api/releases/", {"service": "agent-infer", "count": "true"})
    assert [r["id"] for r in listed.json()] == [created["id"]]
    assert listed["X-Total-Count"] == "1"


def test_release_detail_carries_the_design_record(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    client_for(rm).post(f"/api/releases/{release.pk}/promote/", {"comment": "go"}, format="json")
    record = client_for(rm).get(f"/api/releases/{release.pk}/").json()["record"]
    assert set(record) == {"agent_name", "version", "tag", "publisher", "status", "prev_version", "gray",
                           "rollbackable", "created_at"}
    assert (record["agent_name"], record["version"], record["prev_version"]) == ("agent-infer", "v1.1.0", "v1.0.0")
    assert (record["status"], record["gray"], record["rollbackable"], record["publisher"]) == ("gray", True, True,
                                                                                              "dev")


def test_each_action_is_a_post_with_an_optional_comment(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    client = client_for(rm)
    steps = [("promote", "gray", 5), ("pause", "paused", 5), ("resume", "gray", 5), ("promote", "gray", 10),
             ("rollback", "rolled_back", 0)]
    weight_seen = 0
    for action, status, weight in steps:
        body = {"comment": f"{action} please"}
        if action == "promote":
            body["expected_weight"] = weight_seen
        response = client.post(f"/api/releases/{release.pk}/{action}/", body, format="json")
        weight_seen = response.json()["gray_weight"]
        assert response.status_code == 200, response.json()
        assert (response.json()["status"], response.json()["gray_weight"]) == (status, weight)


def test_illegal_transition_is_409_with_the_reason_in_words(make_release, rm):
    release = make_release("v1.1.0", "staging")
    response = client_for(rm).post(f"/api/releases/{release.pk}/resume/", format="json")
    assert response.status_code == 409
    assert response.json()["detail"] == f"cannot resume release #{release.pk}: it is ready, not paused"


@pytest.mark.parametrize("overrides,field,words", [
    ({"service": "agent-nope"}, "service", "no service named 'agent-nope'; known services: agent-infer"),
    ({"environment": "moon"}, "environment", "no environment named 'moon'"),
    ({"tag": "release-7"}, "tag", "fits no tag convention"),
    ({"tag": "v1.0.0-rc1", "environment": "prod"}, "tag", "not prod"),
    ({"branch": "feature/x"}, "branch", "CI only"),
    ({"commit": "abc"}, "commit", "40-character"),
    ({"enviroment": "prod"}, "enviroment", "unknown field"),
])
def test_bad_release_input_is_400_naming_the_field_and_rule(environments, service, dev, overrides, field, words):
    response = create(client_for(dev), **overrides)
    assert response.status_code == 400
    body = response.json()
    assert field in body["errors"] and words in body["detail"]
    assert not Release.objects.exists()


def test_missing_fields_are_listed(environments, service, dev):
    response = client_for(dev).post("/api/releases/", {"service": "agent-infer"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"environment", "tag", "commit"}


def test_malformed_json_is_400_not_500(environments, service, dev):
    response = client_for(dev).post("/api/releases/", data='{"service": "agent-infer",',
                                     content_type="application/json")
    assert response.status_code == 400
    assert "malformed request body" in response.json()["detail"]


def test_a_json_array_instead_of_an_object_is_400(environments, service, dev):
    response = client_for(dev).post("/api/releases/", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400


def test_a_one_megabyte_comment_is_refused_and_changes_nothing(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    response = client_for(rm).post(f"/api/releases/{release.pk}/promote/", {"comment": "x" * 1_000_000},
                                   format="json")
    assert response.status_code == 400
    assert "comment" in response.json()["errors"]
    release.refresh_from_db()
    assert release.status == S.READY


def test_an_oversized_body_is_413(environments, service, dev):
    body = json.dumps({"service": "agent-infer", "comment": "x" * 3_000_000})
    response = client_for(dev).post("/api/releases/", data=body, content_type="application/json")
    assert response.status_code == 413


def test_binding_a_tag_to_a_second_commit_is_refused(environments, service, dev):
    client = client_for(dev)
    assert create(client, tag="v0.2.0", commit="a" * 40).status_code == 201
    again = create(client, tag="v0.2.0", commit="b" * 40, environment="test")
    assert again.status_code == 409
    assert "already bound to commit " + "a" * 40 in again.json()["detail"]
    assert create(client, tag="v0.2.0", commit="a" * 40, environment="test").status_code == 201


def test_dev_latest_moves_to_each_new_commit(environments, service, dev):
    client = client_for(dev)
    first = create(client, tag="dev-latest", environment="dev", commit="a" * 40).json()
    second = create(client, tag="dev-latest", environment="dev", commit="b" * 40).json()
    assert (first["commit"], second["commit"]) == ("a" * 40, "b" * 40)


def test_forbidden_action_is_403_and_changes_nothing(make_release, qa):
    release = make_release("v1.1.0", "staging")
    before = AuditEvent.objects.count()
    response = client_for(qa).post(f"/api/releases/{release.pk}/promote/", format="json")
    assert response.status_code == 403
    assert "only release_manager may promote" in response.json()["detail"]
    release.refresh_from_db()
    assert release.status == S.READY and AuditEvent.objects.count() == before


def test_user_without_a_role_sees_nothing(make_release, nobody):
    make_release("v1.1.0", "staging")
    response = client_for(nobody).get("/api/releases/")
    assert response.status_code == 403 and "no Rollgate role" in response.json()["detail"]


def test_anonymous_requests_are_401(environments):
    assert APIClient().get("/api/releases/").status_code == 401


def test_unknown_release_is_404(environments, rm):
    assert client_for(rm).get("/api/releases/999999/").status_code == 404
    assert client_for(rm).post("/api/releases/999999/promote/", format="json").status_code == 404


def test_audit_events_are_read_only_and_filterable(live_release, make_release, rm, auditor, qa):
    release = make_release("v1.1.0", "staging")
    client_for(rm).post(f"/api/releases/{release.pk}/promote/", format="json")
    client = client_for(auditor)
    rows = client.get("/api/audit-events/", {"release": release.pk, "action": "release.promote"}).json()
    assert [(r["actor"], r["from_state"], r["to_state"]) for r in rows] == [("rm", "ready", "gray")]
    event_id = rows[0]["id"]
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(f"/api/audit-events/{event_id}/").status_code == 405
    assert client.post("/api/audit-events/", {}, format="json").status_code == 405
    assert client_for(qa).get("/api/audit-events/").status_code == 403


def test_ops_edit_environment_rules_with_validation(environments, ops, rm):
    client = client_for(ops)
    bad = client.patch("/api/environments/prod/", {"required_approvals": {"boss": 1}}, format="json")
    assert bad.status_code == 400 and "unknown role boss" in bad.json()["detail"]
    bad = client.patch("/api/environments/prod/", {"freeze_windows": [{"start": "yesterday"}]}, format="json")
    assert bad.status_code == 400 and "freeze_windows[0]" in bad.json()["detail"]
    good = client.patch("/api/environments/prod/", {"required_approvals": {"qa": 2}}, format="json")
    assert good.status_code == 200 and good.json()["required_approvals"] == {"qa": 2}
    assert client_for(rm).patch("/api/environments/prod/", {"protected": False}, format="json").status_code == 403
    assert AuditEvent.objects.filter(action="environment.update").count() == 1


def test_openapi_schema_is_served(environments, dev):
    response = client_for(dev).get("/api/schema/")
    assert response.status_code == 200 and b"/api/releases/{release_id}/promote/" in response.content


def test_deeply_nested_json_is_400_not_500(environments, service, dev):
    body = '{"service": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client_for(dev).post("/api/releases/", data=body, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


def test_wrong_types_in_every_field_are_400(environments, service, rm, make_release):
    release = make_release("v1.1.0", "staging")
    client = client_for(rm)
    for body in ({"comment": {"a": 1}}, {"full": "maybe"}, {"expected_weight": -1}, {"expected_weight": "abc"}):
        response = client.post(f"/api/releases/{release.pk}/promote/", body, format="json")
        assert response.status_code == 400, body
    response = client.post("/api/releases/", {"service": None, "environment": [], "tag": {}, "commit": 1},
                           format="json")
    assert response.status_code == 400 and set(response.json()["errors"]) == {"service", "environment", "tag",
                                                                              "commit"}


def test_password_guessing_on_the_token_endpoint_is_throttled(environments, dev, settings):
    from django.core.cache import cache

    # The per-address rate is the second line behind django-axes' lockout (tests/releases/test_login_throttle.py);
    # a forged X-Forwarded-For per request does not give a fresh rate.
    settings.AXES_FAILURE_LIMIT = 1000
    cache.clear()
    client = APIClient()
    statuses = [client.post("/api/auth/token/", {"username": "dev", "password": f"guess-{n}"}, format="json",
                            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(35)]
    assert statuses[:30] == [400] * 30 and statuses[-1] == 429
    cache.clear()


def test_the_api_schema_needs_a_login(environments):
    assert APIClient().get("/api/schema/").status_code == 401
