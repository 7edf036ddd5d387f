"""The documented lock order (releases/services.py): a worker transaction holding the foreign-key locks that its
inserts take on a release and its service (the SLA gate's samples, reports and audit rows) never makes a person's
transition on that release wait, so the two cannot deadlock. lock_timeout turns a wait into an error here."""
import threading

import pytest
from django.db import connection, transaction

from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from releases.services import Actor, release_pause, release_promote

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def gray(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.GRAY
    return release


def hold_in_thread(work):
    """Run ``work`` in a transaction of its own connection and keep it open until released."""
    holding, release = threading.Event(), threading.Event()

    def run():
        try:
            with transaction.atomic():
                work()
                holding.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert holding.wait(timeout=20)
    return thread, release


@pytest.mark.parametrize("worker_locks", ["gate_shared_locks", "audit_insert"])
def test_a_person_pauses_while_a_worker_holds_foreign_key_locks_on_the_release(gray, rm, worker_locks):
    def gate_shared_locks():  # the KEY SHARE locks a foreign-key check takes on the service and the release
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM releases_agentservice WHERE id = %s FOR KEY SHARE", [gray.service_id])
            cursor.execute("SELECT id FROM releases_release WHERE id = %s FOR KEY SHARE", [gray.pk])

    def audit_insert():  # what the gate's audit rows do implicitly: KEY SHARE on release, service, environment
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the checks Django defers to commit, taken now
        AuditEvent.objects.create(actor_name="sla-gate", action="sla.manual_review", object_type="release",
                                  object_id=str(gray.pk), release=gray, service=gray.service,
                                  environment=gray.environment)

    thread, done = hold_in_thread(gate_shared_locks if worker_locks == "gate_shared_locks" else audit_insert)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '5s'")
            release_pause(actor=Actor.of(rm), release_id=gray.pk, comment="hold")
    finally:
        done.set()
        thread.join(timeout=20)
    assert Release.objects.get(pk=gray.pk).status == ReleaseStatus.PAUSED
