"""No duplicate releases (issue 15): the same version to the same environment while one is open answers 409 naming
it; the API honours an Idempotency-Key header."""
import threading

import pytest
from django.db import connection

from releases.choices import ReleaseStatus
from releases.errors import DuplicateRelease
from releases.models import AuditEvent, Release
from releases.services import Actor, release_create, release_worker_transition
from tests.conftest import client_for, sha

pytestmark = pytest.mark.django_db

S = ReleaseStatus


def body(service, env="staging", tag="v2.4.0-rc2", commit=None):
    return {"service": service.name, "environment": env, "tag": tag, "commit": commit or "ab" * 20}


def test_same_version_to_the_same_environment_while_open_is_409_naming_the_open_release(environments, service, dev):
    client = client_for(dev)
    first = client.post("/api/releases/", body(service), format="json")
    assert first.status_code == 201
    first_id = first.json()["id"]
    again = client.post("/api/releases/", body(service), format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "duplicate_release" and again.json()["release_id"] == first_id
    assert f"release #{first_id} of agent-infer v2.4.0-rc2" in again.json()["detail"]
    assert Release.objects.count() == 1
    # Another environment, or another version, is not a duplicate.
    assert client.post("/api/releases/", body(service, env="test"), format="json").status_code == 201
    assert client.post("/api/releases/", body(service, tag="v2.4.0-rc3", commit="cd" * 20),
                       format="json").status_code == 201


@pytest.mark.parametrize("status,open_", [(S.BUILDING, True), (S.CI_FAILED, True), (S.READY, True),
                                          (S.REJECTED, False), (S.BLOCKED, False)])
def test_only_an_open_release_counts_as_a_duplicate(environments, service, dev, status, open_):
    commit = sha()
    release = release_create(actor=Actor.of(dev), service=service.name, environment="dev", tag="v5.0.1",
                             commit=commit)
    sources = {S.BUILDING: {S.PENDING}, S.CI_FAILED: {S.PENDING}, S.READY: {S.PENDING}, S.REJECTED: {S.PENDING},
               S.BLOCKED: {S.PENDING}}
    assert release_worker_transition(release_id=release.pk, from_statuses=sources[status], to_status=status,
                                     actor_name="test", action="test.move")
    if open_:
        with pytest.raises(DuplicateRelease) as refused:
            release_create(actor=Actor.of(dev), service=service.name, environment="dev", tag="v5.0.1", commit=commit)
        assert refused.value.extra == {"release_id": release.pk}
    else:
        again = release_create(actor=Actor.of(dev), service=service.name, environment="dev", tag="v5.0.1",
                               commit=commit)
        assert again.pk != release.pk and again.version_id == release.version_id


def test_idempotency_key_replays_the_first_answer_and_creates_one_release(environments, service, dev, rm):
    client = client_for(dev)
    key = {"HTTP_IDEMPOTENCY_KEY": "7f1c2a9e-5b1d-4c1e-9a55-3c2b1f0e6d11"}
    first = client.post("/api/releases/", body(service, env="test", tag="v3.3.3"), format="json", **key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    replay = client.post("/api/releases/", body(service, env="test", tag="v3.3.3"), format="json", **key)
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert Release.objects.count() == 1 and AuditEvent.objects.filter(action="release.create").count() == 1
    # The same key for a different request is a mistake, said so; another user's keys are their own.
    other = client.post("/api/releases/", body(service, env="dev", tag="v3.3.3"), format="json", **key)
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["errors"]
    assert other.json()["release_id"] == first.json()["id"]
    mine = client_for(rm).post("/api/releases/", body(service, env="dev", tag="v3.3.3"), format="json", **key)
    assert mine.status_code == 201
    bad = client.post("/api/releases/", body(service), format="json", HTTP_IDEMPOTENCY_KEY="x" * 201)
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["errors"]


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_once_make_one_release(environments, service, dev):
    answers = []

    def post():
        try:
            answers.append(client_for(dev).post("/api/releases/", body(service, env="dev", tag="v7.1.0"),
                                                format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == [201, 409, 409, 409]
    assert Release.objects.filter(version__tag="v7.1.0").count() == 1
