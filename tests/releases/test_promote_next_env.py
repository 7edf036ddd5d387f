"""Promote to the next environment (issue 15): a release live (verified) in one environment starts the release of
the same version in the next environment of the path, within the tag and branch conventions; refused with the
reason otherwise."""
import pytest
from django.test import Client

from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from releases.services import Actor, release_create, release_promote, release_worker_transition
from tests.conftest import client_for, sha

pytestmark = pytest.mark.django_db
S = ReleaseStatus


def live_in(env: str, tag: str, by, promoter, branch: str = "", commit: str | None = None) -> Release:
    release = release_create(actor=Actor.of(by), service="agent-infer", environment=env, tag=tag,
                             commit=commit or sha(), branch=branch)
    assert release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                     actor_name="pipeline", action="pipeline.succeeded")
    if env == "prod":
        raise AssertionError("use the approvals path for prod")
    release_promote(actor=Actor.of(promoter), release_id=release.pk)  # nothing live yet: straight to live
    release.refresh_from_db()
    assert release.status == S.LIVE
    return release


@pytest.mark.parametrize("here,there", [("dev", "test"), ("test", "staging"), ("staging", "prod")])
def test_a_live_release_goes_on_to_the_next_environment_with_the_same_version(environments, service, dev, rm,
                                                                              here, there):
    source = live_in(here, "v2.7.1", dev, rm)
    response = client_for(rm).post(f"/api/releases/{source.pk}/promote-next-env/", {"comment": "verified"},
                                   format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["environment"], body["tag"], body["commit"]) == (there, "v2.7.1", source.version.commit_sha)
    assert body["status"] == "pending" and body["started_by"] == "rm"
    created = Release.objects.get(pk=body["id"])
    assert created.version_id == source.version_id  # the same version: its image is built once
    event = AuditEvent.objects.get(action="release.create", release=created)
    assert event.details["promoted_from"] == source.pk and event.details["from_environment"] == here
    again = client_for(rm).post(f"/api/releases/{source.pk}/promote-next-env/", format="json")
    assert again.status_code == 409 and again.json()["release_id"] == created.pk  # no duplicate


def test_a_release_candidate_stops_at_staging(environments, service, dev, rm):
    source = live_in("staging", "v3.0.0-rc2", dev, rm)
    response = client_for(rm).post(f"/api/releases/{source.pk}/promote-next-env/", format="json")
    assert response.status_code == 409
    assert "v3.0.0-rc2 is a Staging candidate (vX.Y.Z-rcN) tag; it may be released to dev, staging, test, not prod" \
        in response.json()["detail"]
    assert not Release.objects.filter(environment__name="prod").exists()


def test_branch_conventions_and_the_end_of_the_path_are_said(environments, service, dev, rm, qa):
    on_develop = live_in("test", "v3.1.0", dev, rm, branch="develop")
    refused = client_for(rm).post(f"/api/releases/{on_develop.pk}/promote-next-env/", format="json")
    assert refused.status_code == 409 and "branch 'develop' cannot release to staging" in refused.json()["detail"]
    # prod is the last environment.
    prod = release_create(actor=Actor.of(dev), service="agent-infer", environment="prod", tag="v3.1.1", commit=sha())
    last = client_for(rm).post(f"/api/releases/{prod.pk}/promote-next-env/", format="json")
    assert last.status_code == 409 and "prod is the last environment on the path" in last.json()["detail"]


@pytest.mark.parametrize("status", [S.READY, S.BUILDING, S.REJECTED])
def test_only_a_verified_release_goes_on(environments, service, dev, rm, status):
    release = release_create(actor=Actor.of(dev), service="agent-infer", environment="test", tag="v3.2.0",
                             commit=sha())
    assert release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=status,
                                     actor_name="pipeline", action="test.move")
    response = client_for(rm).post(f"/api/releases/{release.pk}/promote-next-env/", format="json")
    assert response.status_code == 409
    assert f"only a release that is live there (verified) goes on to staging" in response.json()["detail"]


def test_who_may_and_the_idempotency_key(environments, service, dev, rm, qa):
    source = live_in("dev", "v3.3.0", dev, rm)
    assert client_for(qa).post(f"/api/releases/{source.pk}/promote-next-env/", format="json").status_code == 403
    key = {"HTTP_IDEMPOTENCY_KEY": "promote-3.3.0-test"}
    first = client_for(dev).post(f"/api/releases/{source.pk}/promote-next-env/", format="json", **key)
    replay = client_for(dev).post(f"/api/releases/{source.pk}/promote-next-env/", format="json", **key)
    assert first.status_code == 201 and replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert client_for(dev).post("/api/releases/999999/promote-next-env/", format="json").status_code == 404


def test_release_page_button_starts_the_next_release_or_says_why_not(environments, service, dev, rm):
    source = live_in("test", "v3.4.0", dev, rm)
    browser = Client()
    browser.force_login(rm)
    page = browser.get(f"/releases/{source.pk}/").content.decode()
    assert 'data-action="promote_next_env"' in page and "Promote to staging" in page
    response = browser.post(f"/releases/{source.pk}/promote_next_env/")
    created = Release.objects.get(environment__name="staging", version=source.version)
    assert response.status_code == 302 and response.url == f"/releases/{created.pk}/"
    candidate = live_in("staging", "v3.5.0-rc1", dev, rm)
    page = browser.get(f"/releases/{candidate.pk}/").content.decode()
    assert 'data-why="promote_next_env"' in page and "not prod" in page
