"""Finds lost pipeline work again from the database, and queues it again (issue 13).

Queued work lives in two places: the message in Redis and the rows here. Redis can lose the message (a restart
without persistence, a send that failed while it was down, a worker killed with the message in hand); the rows
stay. Every few seconds (beat, "pipelines.sweep", on the gate queue so builds never delay it) this module looks
for rows that say work is due while nobody works on it:

- a pending release without a pipeline (the receiver that starts it never ran);
- the next stage of a live pipeline, pending, whose task was queued a while ago and never claimed;
- a running stage whose worker stopped beating: queued again, the new delivery takes it over (attempt + 1).

Sending again is safe: a stage is claimed by compare-and-set (pipelines/services.stage_claim), so a duplicate
message finds nothing to do. Each row is sent again after ROLLGATE_REDRIVE_AFTER_SECONDS, then after twice that,
and so on up to ROLLGATE_REDRIVE_MAX_BACKOFF_SECONDS: a queue that is merely long (two builds ahead) gets a few
duplicates, not one per sweep. A stage taken over ROLLGATE_WORK_MAX_ATTEMPTS times fails with the reason.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from pipelines import services
from pipelines.models import Pipeline, PipelineStatus, Stage, StageStatus
from releases.choices import ReleaseStatus
from releases.durable import SweepReport, redrive_due
from releases.models import Release

log = logging.getLogger(__name__)
T, P = StageStatus, PipelineStatus
BATCH = 200  # rows per kind per sweep: a sweep stays short however much was lost


@dataclass
class PipelineSweepReport(SweepReport):
    pipelines_started: list[int] = field(default_factory=list)  # release ids
    stages_requeued: list[int] = field(default_factory=list)  # stage ids whose message was lost
    stages_taken_over: list[int] = field(default_factory=list)  # stage ids whose worker stopped beating
    stages_failed: list[int] = field(default_factory=list)  # taken over too often


def pipelines_sweep(*, now: dt.datetime | None = None) -> PipelineSweepReport:
    now = now or timezone.now()
    report = PipelineSweepReport()
    after = dt.timedelta(seconds=settings.ROLLGATE_REDRIVE_AFTER_SECONDS)

    # 1. Pending releases whose pipeline was never created.
    orphans = (Release.objects.filter(status=ReleaseStatus.PENDING, created_at__lt=now - after)
               .filter(~Exists(Pipeline.objects.filter(release=OuterRef("pk"))))
               .values_list("pk", flat=True)[:BATCH])
    for release_id in orphans:
        if services.pipeline_start(release_id=release_id) is not None:
            report.pipelines_started.append(release_id)

    # 2. The next stage of a pipeline that is going (every earlier stage done), pending, queued a while ago.
    unfinished_before = Stage.objects.filter(pipeline=OuterRef("pipeline"), position__lt=OuterRef("position")).exclude(
        status__in=[T.SUCCEEDED, T.SKIPPED])
    waiting = (Stage.objects.filter(status=T.PENDING, pipeline__status__in=[P.PENDING, P.RUNNING])
               .filter(~Exists(unfinished_before))
               .annotate(since=Coalesce("queued_at", "pipeline__created_at"))
               .filter(since__lt=now - after)
               .values_list("pk", "queued_at", "since", "redrives")[:BATCH])
    for stage_id, queued_at, since, redrives in waiting:
        if redrive_due(since, redrives, now) and _requeue(stage_id, status=T.PENDING, queued_at=queued_at):
            report.stages_requeued.append(stage_id)

    # 3. Running stages whose worker stopped beating: queue them again, the new delivery takes them over.
    stale = now - dt.timedelta(seconds=settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS)
    orphaned = (Stage.objects.filter(status=T.RUNNING).filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at=None))
                .values_list("pk", "attempt", "heartbeat_at", "queued_at", "redrives")[:BATCH])
    for stage_id, attempt, heartbeat_at, queued_at, redrives in orphaned:
        if attempt >= settings.ROLLGATE_WORK_MAX_ATTEMPTS:
            if services.stage_fail(stage_id=stage_id, attempt=attempt, reason=(
                    f"worker lost {attempt} times: each worker that ran this stage stopped responding")):
                report.stages_failed.append(stage_id)
            continue
        # Not queued again since its worker last beat: take it over now. Queued again already (and still not
        # taken over: the message was lost too, or no worker is up): again after the backoff.
        first = queued_at is None or heartbeat_at is None or queued_at < heartbeat_at
        if (first or redrive_due(queued_at, redrives, now)) and _requeue(stage_id, status=T.RUNNING, queued_at=queued_at):
            report.stages_taken_over.append(stage_id)
    if report.total:
        log.warning("sweeper: queued lost pipeline work again: %s", report.as_dict())
    return report


def _requeue(stage_id: int, *, status: str, queued_at: dt.datetime | None) -> bool:
    """Queue the stage again unless another sweep (or its own task) got there first: compare-and-set on the
    stage's status and the time it was last queued."""
    with transaction.atomic():
        rows = Stage.objects.select_for_update(skip_locked=True).filter(pk=stage_id, status=status)
        rows = rows.filter(queued_at=queued_at) if queued_at is not None else rows.filter(queued_at=None)
        if not rows.exists():
            return False
        services.stage_requeue(stage_id=stage_id)
    return True
