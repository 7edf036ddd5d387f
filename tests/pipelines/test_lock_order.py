"""Approvals and rejections while the release's pipeline runs in real workers, for a bounded time: the person's
transaction (service, then release) and the worker's stage transitions keep one lock order (releases/services.py),
so nothing deadlocks and no request answers 500."""
import json
import threading

import pytest
from django.db import connection

from pipelines.models import Pipeline
from releases.choices import ReleaseStatus
from releases.models import Release
from releases.services import Actor, release_create
from tests.conftest import client_for, sha
from tests.pipelines.conftest import wait_for

NOOP = "pipelines.runners.noop"
RELEASES = 12


@pytest.mark.django_db(transaction=True)
def test_approvals_and_rejections_against_running_pipelines_never_deadlock(workers, service, dev, rm, rm2, qa,
                                                                         environments):
    env = {"ROLLGATE_PIPELINE_RUNNERS": json.dumps({"prepare": NOOP, "build": NOOP, "scan": NOOP, "push": NOOP})}
    for _ in range(2):
        workers.start(**env)
    releases = [release_create(actor=Actor.of(dev), service=service.name, environment="prod",
                               tag=f"v4.{n}.0", commit=sha()).pk for n in range(RELEASES)]
    errors: list[str] = []
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def person(user, verb, ids):
        client = client_for(user)
        client.raise_request_exception = False
        try:
            for release_id in ids:
                response = client.post(f"/api/releases/{release_id}/{verb}/", {"comment": "checked the diff"},
                                       format="json")
                with lock:
                    answers[response.status_code] = answers.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    errors.append(f"{verb} #{release_id}: HTTP {response.status_code}: {response.content[:300]!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=person, args=(rm, "approve", releases)),
               threading.Thread(target=person, args=(qa, "approve", releases)),
               threading.Thread(target=person, args=(rm2, "reject", releases[::3]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)

    def settled():
        statuses = set(Release.objects.filter(pk__in=releases).values_list("status", flat=True))
        return statuses <= {ReleaseStatus.READY, ReleaseStatus.REJECTED}

    try:
        wait_for(settled, timeout=90, what="every pipeline to finish (ready) or its release to be rejected")
    except AssertionError:
        print(workers.logs())
        raise
    assert errors == []
    assert set(answers) <= {200, 201, 409}, answers
    assert "deadlock detected" not in workers.logs()
    assert Release.objects.filter(pk__in=releases, status=ReleaseStatus.REJECTED).exists()
    assert Pipeline.objects.filter(release_id__in=releases, status="succeeded").exists()
