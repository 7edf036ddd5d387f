"""The pipeline sweeper (issue 13): work whose message was lost is found again from the rows and finished; a stage
whose worker died is taken over; a redelivered message is claimed later instead of dropped.

Messages are queued for real to this run's Redis and then lost (tests/durable.py); the sweeper's re-sends run
in-process through the real tasks (eager). Numbers vary: two redrive delays, several releases, repeated losses.
"""
import datetime as dt
import json

import pytest
from django.utils import timezone

from pipelines import services
from pipelines.models import Pipeline, Stage, StageStatus
from pipelines.sweeper import pipelines_sweep
from pipelines.tasks import run_stage
from releases.choices import ReleaseStatus
from releases.durable import redrive_delay
from releases.models import Release
from releases.services import Actor, release_create
from tests.conftest import sha
from tests.durable import eager, later, lost_messages

pytestmark = pytest.mark.django_db(transaction=True)
NOOP = "pipelines.runners.noop"
S, T = ReleaseStatus, StageStatus


@pytest.fixture(autouse=True)
def noop_stages(settings):
    settings.ROLLGATE_PIPELINE_RUNNERS = {name: NOOP for name in ("prepare", "build", "scan", "push")}


def create(dev, tag: str) -> Release:
    return release_create(actor=Actor.of(dev), service="agent-infer", environment="staging", tag=tag, commit=sha())


@pytest.mark.parametrize("redrive_after", [10.0, 45.0])
def test_releases_whose_messages_were_lost_are_built_after_the_redrive_delay(
        settings, environments, service, dev, redrive_after):
    settings.ROLLGATE_REDRIVE_AFTER_SECONDS = redrive_after
    with lost_messages() as broker:
        releases = [create(dev, f"v1.{n}.0") for n in range(3)]
        assert broker.llen("celery") == 3  # really queued: one first stage each, then lost with the broker
    for release in releases:
        release.refresh_from_db()
        assert release.status == S.PENDING
        assert Stage.objects.get(pipeline__release=release, name="prepare").status == T.PENDING

    with eager():
        # Before the delay: a queue may simply be long; nothing is sent twice.
        assert pipelines_sweep(now=later(redrive_after - 2)).total == 0
        report = pipelines_sweep(now=later(redrive_after + 1))
    assert len(report.stages_requeued) == 3
    for release in releases:
        release.refresh_from_db()
        assert release.status == S.READY, release.status_reason
        prepare = Stage.objects.get(pipeline__release=release, name="prepare")
        assert (prepare.status, prepare.redrives, prepare.attempt) == (T.SUCCEEDED, 1, 1)
        assert prepare.log_lines.filter(message__startswith="queued again").count() == 1


def test_a_stage_whose_next_stage_was_never_queued_goes_on(environments, service, dev):
    with eager():
        release = create(dev, "v2.0.0")  # runs the whole pipeline in-process
    assert Release.objects.get(pk=release.pk).status == S.READY
    # Rewind: build succeeded, its successor's message never arrived.
    pipeline = Pipeline.objects.get(release=release)
    pipeline.stages.filter(name__in=["scan", "push"]).update(status=T.PENDING, started_at=None, finished_at=None,
                                                            attempt=0, queued_at=None)
    Pipeline.objects.filter(pk=pipeline.pk).update(status="running", finished_at=None)
    Release.objects.filter(pk=release.pk).update(status=S.BUILDING)
    with eager():
        report = pipelines_sweep(now=later(120))
    scan = pipeline.stages.get(name="scan")
    assert report.stages_requeued == [scan.pk]  # only the next stage, never the one after it
    assert Release.objects.get(pk=release.pk).status == S.READY
    assert pipeline.stages.get(name="push").status == T.SUCCEEDED


def test_a_pending_release_without_a_pipeline_gets_one(environments, service, dev):
    with lost_messages():
        release = create(dev, "v3.0.0")
    Pipeline.objects.filter(release=release).delete()  # as if the receiver that starts it never ran
    with eager():
        report = pipelines_sweep(now=later(60))
    assert report.pipelines_started == [release.pk]
    assert Release.objects.get(pk=release.pk).status == S.READY


def test_the_redrive_backs_off_while_the_message_keeps_getting_lost(settings, environments, service, dev):
    settings.ROLLGATE_REDRIVE_AFTER_SECONDS = 20.0
    with lost_messages():
        release = create(dev, "v4.0.0")
        prepare = Stage.objects.get(pipeline__release=release, name="prepare")
        queued = prepare.queued_at
        sent = []
        for offset in (15, 21, 30, 45, 59, 62, 100, 150, 190):  # seconds after the first queueing
            now = queued + dt.timedelta(seconds=offset)
            if pipelines_sweep(now=now).stages_requeued:
                sent.append(offset)
                # The sweeper's send happens at `now` in this replay: pin the row to it.
                Stage.objects.filter(pk=prepare.pk).update(queued_at=now)
    # 20 s after the first send, then 40 s after that, then 80 s: not once per sweep.
    assert sent == [21, 62, 150]
    assert Stage.objects.get(pk=prepare.pk).redrives == 3
    assert [redrive_delay(n) for n in range(3)] == [20.0, 40.0, 80.0]


def test_a_stage_whose_worker_stopped_beating_is_taken_over_by_the_sweep(settings, environments, service, dev):
    settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS = 12.0
    with lost_messages():
        release = create(dev, "v5.0.0")
    prepare = Stage.objects.get(pipeline__release=release, name="prepare")
    assert services.stage_claim(stage_id=prepare.pk, task_id="the-worker-that-dies") is not None
    with eager():
        # Queued 30 s ago, claimed, beating until 11 s ago.
        Stage.objects.filter(pk=prepare.pk).update(queued_at=later(-30), heartbeat_at=later(-11))
        assert pipelines_sweep().total == 0  # still beating, as far as anyone can tell
        Stage.objects.filter(pk=prepare.pk).update(heartbeat_at=later(-13))  # then the worker died
        report = pipelines_sweep()
    assert report.stages_taken_over == [prepare.pk]
    prepare.refresh_from_db()
    assert (prepare.status, prepare.attempt) == (T.SUCCEEDED, 2)
    assert prepare.log_lines.filter(message__contains="taking over attempt 2").exists()
    assert Release.objects.get(pk=release.pk).status == S.READY


def test_a_stage_that_keeps_losing_its_workers_fails_with_the_reason(settings, environments, service, dev):
    settings.ROLLGATE_WORK_MAX_ATTEMPTS = 4
    with lost_messages():
        release = create(dev, "v6.0.0")
    prepare = Stage.objects.get(pipeline__release=release, name="prepare")
    services.stage_claim(stage_id=prepare.pk, task_id="t")
    Stage.objects.filter(pk=prepare.pk).update(attempt=4, heartbeat_at=later(
        -settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS - 1))
    report = pipelines_sweep()
    assert report.stages_failed == [prepare.pk]
    release.refresh_from_db()
    assert release.status == S.CI_FAILED
    assert "worker lost 4 times" in release.status_reason


def test_a_redelivered_message_of_a_held_stage_asks_again_when_the_heartbeat_goes_stale(
        settings, environments, service, dev):
    """A pool process that dies has its message back within a second, while its stage still looks held. That
    delivery must not be dropped: it schedules one check for when the heartbeat goes stale."""
    settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS = 9.0
    with lost_messages() as broker:
        release = create(dev, "v7.0.0")
        prepare = Stage.objects.get(pipeline__release=release, name="prepare")
        services.stage_claim(stage_id=prepare.pk, task_id="dying")
        broker.delete("celery")
        assert run_stage.apply(args=[prepare.pk]).get() == "held"
        assert run_stage.apply(args=[prepare.pk]).get() == "not_claimed"  # one check per stage at a time
        messages = [json.loads(m) for m in broker.lrange("celery", 0, -1)]
    assert len(messages) == 1
    headers = messages[0]["headers"]
    assert headers["task"] == "pipelines.run_stage" and headers["kwargsrepr"] == "{'takeover_check': True}"
    eta = dt.datetime.fromisoformat(headers["eta"])
    assert 8.0 <= (eta - timezone.now()).total_seconds() <= 10.0
