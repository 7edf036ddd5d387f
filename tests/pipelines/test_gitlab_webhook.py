"""POST /api/webhooks/gitlab/: Tag Push Hook -> a release for that tag; the X-Gitlab-Token secret is checked."""
import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from releases.models import AuditEvent, Release, Version

pytestmark = pytest.mark.django_db
TOKEN = "gl-webhook-secret-0123"
URL = "/api/webhooks/gitlab/"
COMMIT = "a" * 40


@pytest.fixture(autouse=True)
def gitlab_settings(settings):
    settings.ROLLGATE_GITLAB_WEBHOOK_TOKEN = TOKEN
    settings.ROLLGATE_GITLAB_PROJECTS = {}


@pytest.fixture
def gitlab_service(service):
    service.source_repository = "https://gitlab.example.com/agents/agent-infer.git"
    service.save()
    return service


def tag_push(tag="v1.4.0-rc1", commit=COMMIT, path="agents/agent-infer"):
    return {"object_kind": "tag_push", "ref": f"refs/tags/{tag}", "checkout_sha": commit, "after": commit,
            "project": {"path_with_namespace": path, "web_url": f"https://gitlab.example.com/{path}",
                        "git_http_url": f"https://gitlab.example.com/{path}.git"}}


def post(payload, token=TOKEN, event="Tag Push Hook"):
    headers = {"HTTP_X_GITLAB_EVENT": event}
    if token is not None:
        headers["HTTP_X_GITLAB_TOKEN"] = token
    return APIClient().post(URL, payload, format="json", **headers)


def nothing_recorded():
    return not (Release.objects.exists() or Version.objects.exists() or AuditEvent.objects.exists()
                or get_user_model().objects.filter(username="gitlab").exists())


@pytest.mark.parametrize("token", [None, "", "wrong-token", TOKEN + "x"])
def test_missing_or_wrong_token_is_refused_and_records_nothing(gitlab_service, environments, token):
    response = post(tag_push(), token=token)
    assert response.status_code == 403
    assert response.json()["detail"] == "X-Gitlab-Token is missing or wrong"
    assert nothing_recorded()


def test_webhook_without_a_configured_token_is_closed(gitlab_service, environments, settings):
    settings.ROLLGATE_GITLAB_WEBHOOK_TOKEN = ""
    response = post(tag_push(), token="")
    assert response.status_code == 403 and "ROLLGATE_GITLAB_WEBHOOK_TOKEN is set" in response.json()["detail"]
    assert nothing_recorded()


def test_bad_token_is_refused_before_the_body_is_read(gitlab_service, environments):
    response = APIClient().post(URL, "not json", content_type="application/json",
                                HTTP_X_GITLAB_TOKEN="wrong", HTTP_X_GITLAB_EVENT="Tag Push Hook")
    assert response.status_code == 403


def test_release_candidate_tag_creates_a_staging_release(gitlab_service, environments):
    response = post(tag_push("v1.4.0-rc1"))
    assert response.status_code == 201, response.content
    release = Release.objects.get(pk=response.json()["release_id"])
    assert (release.service, release.environment.name, release.version.tag, release.version.commit_sha) == (
        gitlab_service, "staging", "v1.4.0-rc1", COMMIT)
    assert release.started_by.username == "gitlab"
    assert AuditEvent.objects.filter(action="release.create", actor_name="gitlab").exists()
    # GitLab re-delivers on timeouts: the same tag does not make a second release.
    again = post(tag_push("v1.4.0-rc1"))
    assert again.status_code == 200 and again.json()["release_id"] == release.pk
    assert Release.objects.count() == 1


def test_release_tag_goes_to_prod_and_dev_latest_to_dev(gitlab_service, environments):
    assert Release.objects.get(pk=post(tag_push("v1.4.0")).json()["release_id"]).environment.name == "prod"
    assert Release.objects.get(pk=post(tag_push("dev-latest", "b" * 40)).json()["release_id"]).environment.name == "dev"


def test_project_mapped_in_settings(service, environments, settings):
    settings.ROLLGATE_GITLAB_PROJECTS = {"platform/infer": service.name}
    response = post(tag_push(path="platform/infer"))
    assert response.status_code == 201 and Release.objects.get().service == service


def test_unknown_project_bad_tag_and_other_events(gitlab_service, environments):
    unknown = post(tag_push(path="someone/else"))
    assert unknown.status_code == 400 and "project" in unknown.json()["errors"]
    bad_tag = post(tag_push("release-7"))
    assert bad_tag.status_code == 400 and "fits no tag convention" in bad_tag.json()["detail"]
    push = post({"object_kind": "push", "ref": "refs/heads/main"}, event="Push Hook")
    assert push.status_code == 202 and push.json()["detail"].startswith("ignored")
    deleted = post(tag_push(commit="0" * 40))
    assert deleted.status_code == 202 and "deleted" in deleted.json()["detail"]
    assert not Release.objects.exists()


def test_malformed_deliveries_get_400_naming_the_field_and_record_nothing(gitlab_service, environments):
    not_an_object = {**tag_push(), "project": "agents/agent-infer"}
    assert post(not_an_object).status_code == 400
    assert "project" in post(not_an_object).json()["detail"]
    too_long = tag_push(tag="v1.0.0-gray-" + "A" * 200)
    assert post(too_long).status_code == 400
    assert nothing_recorded()


def test_commit_time_from_the_push_event_is_kept_for_the_lead_time(gitlab_service, environments):
    payload = tag_push("v2.3.0-rc1", commit="c" * 40)
    payload["commits"] = [{"id": "b" * 40, "timestamp": "2026-10-01T08:00:00+00:00"},
                          {"id": "c" * 40, "timestamp": "2026-10-02T09:30:00+02:00"}]
    response = post(payload)
    assert response.status_code == 201, response.content
    version = Release.objects.get(pk=response.json()["release_id"]).version
    assert version.committed_at.isoformat() == "2026-10-02T07:30:00+00:00"  # the tagged commit's, in UTC
    plain = post(tag_push("v2.4.0-rc1", commit="d" * 40))  # GitLab sends no commits for a tag: unknown
    assert Release.objects.get(pk=plain.json()["release_id"]).version.committed_at is None


def test_malformed_commit_time_is_400_naming_commits(gitlab_service, environments):
    payload = tag_push("v2.5.0-rc1", commit="e" * 40)
    payload["commits"] = [{"id": "e" * 40, "timestamp": "yesterday"}]
    response = post(payload)
    assert response.status_code == 400 and response.json()["detail"].startswith("commits[].timestamp: ")
    assert not Release.objects.exists()
