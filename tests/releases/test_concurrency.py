"""Transitions are serialised on PostgreSQL: concurrent promote requests on one release make one transition."""
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from releases.choices import ReleaseStatus as S
from releases.models import AuditEvent
from releases.services import Actor, release_promote

CONCURRENCY = 50


def _fire(user, url: str, body: dict, count: int) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker():
        try:
            client = APIClient()
            client.force_authenticate(user)
            barrier.wait(timeout=30)
            response = client.post(url, body, format="json")
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL; run with DATABASE_URL")
@pytest.mark.parametrize("body", [{}, {"expected_weight": 0}], ids=["bare", "with-expected-weight"])
def test_fifty_concurrent_promotes_make_exactly_one_transition(live_release, make_release, rm, body):
    release = make_release("v1.1.0", "staging")
    statuses = _fire(rm, f"/api/releases/{release.pk}/promote/", body, CONCURRENCY)
    assert len(statuses) == CONCURRENCY
    assert statuses.count(200) == 1 and statuses.count(409) == CONCURRENCY - 1, statuses
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 5)
    assert AuditEvent.objects.filter(release=release, action="release.promote").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks need PostgreSQL; run with DATABASE_URL")
def test_concurrent_promote_and_rollback_never_leave_two_live_releases(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)  # now a canary at 5 %
    runs = [threading.Thread(target=_fire, args=(rm, f"/api/releases/{release.pk}/{action}/", body, 10))
            for action, body in (("promote", {"full": True}), ("rollback", {}))]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=60)
    live = list(type(release).objects.filter(service=release.service, environment=release.environment,
                                             status=S.LIVE))
    assert [r.pk for r in live] == [live_release.pk]
