"""Safe under faults: claims are compare-and-set, stages past their time limit reaped, logs pruned after their
retention. (A worker killed mid-stage, with the shipped settings: tests/faults/test_worker_kill.py.)"""
import datetime as dt

import pytest
from django.utils import timezone

from pipelines import services
from pipelines.models import LogLevel, Pipeline, PipelineStatus, Stage, StageLogLine, StageStatus
from releases.choices import ReleaseStatus
from releases.models import Release

NOOP = "pipelines.runners.noop"


@pytest.fixture
def running_stage(make_release):
    """A pending release with its pipeline, the prepare stage claimed by a worker."""
    release = make_release("v3.0.0-rc1", status=ReleaseStatus.PENDING)
    pipeline = services.pipeline_start(release_id=release.pk)
    stage = services.stage_claim(stage_id=pipeline.stages.get(name="prepare").pk, task_id="task-1")
    assert stage is not None and stage.attempt == 1
    return stage


def test_claim_is_compare_and_set_another_worker_gets_nothing(running_stage):
    assert services.stage_claim(stage_id=running_stage.pk, task_id="task-2") is None
    # A stale attempt cannot record an outcome once someone else owns the stage.
    assert not services.stage_succeed(stage_id=running_stage.pk, attempt=running_stage.attempt + 1)


def test_reaper_fails_stage_past_its_time_limit(running_stage, settings):
    Stage.objects.filter(pk=running_stage.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    assert services.stages_reap_stale() == 1
    stage = Stage.objects.get(pk=running_stage.pk)
    assert stage.status == StageStatus.FAILED
    assert stage.failure_reason == f"prepare ran longer than its {settings.ROLLGATE_PIPELINE_STAGE_TIME_LIMITS['prepare']} s limit (reaped)"
    pipeline = Pipeline.objects.get(pk=stage.pipeline_id)
    assert pipeline.status == PipelineStatus.FAILED and pipeline.labels == ["ci_failed"]
    assert Release.objects.get(pk=pipeline.release_id).status == ReleaseStatus.CI_FAILED
    assert services.stages_reap_stale() == 0  # nothing left running


def test_reaper_leaves_healthy_running_stage_alone(running_stage):
    assert services.stages_reap_stale() == 0
    assert Stage.objects.get(pk=running_stage.pk).status == StageStatus.RUNNING


def test_logs_older_than_the_retention_are_pruned(running_stage, settings):
    settings.ROLLGATE_PIPELINE_LOG_RETENTION_DAYS = 7
    old = services.stage_log_append(stage_id=running_stage.pk, message="old line")
    StageLogLine.objects.filter(pk=old.pk).update(time=timezone.now() - dt.timedelta(days=8))
    recent = services.stage_log_append(stage_id=running_stage.pk, message="recent line", level=LogLevel.WARNING)
    assert services.stage_logs_prune() == 1
    assert list(StageLogLine.objects.filter(stage=running_stage).values_list("pk", flat=True)) == [recent.pk]


def test_log_lines_are_redacted(running_stage):
    line = services.stage_log_append(stage_id=running_stage.pk, message="login with password=hunter2 ok")
    assert line.message == "login with password=[redacted] ok"
