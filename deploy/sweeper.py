"""Finds lost deploy work again from the database and queues it again; keeps the target in line with the records.

The deploy half of the sweeper (pipelines/sweeper.py has the idea and the backoff): every few seconds (beat,
"deploy.sweep", on the gate queue) it looks for

- a deploying release without a Rollout row (the receiver that creates it never ran);
- a pending rollout whose task was queued a while ago and never claimed (the message was lost);
- a running rollout whose worker stopped beating: queued again, the new delivery takes it over;
- a traffic change the target never applied: the newest change on the row (traffic_seq) is ahead of the newest
  applied one (traffic_applied_seq), or was sent and failed;
- a release whose records say one thing serves while the newest traffic change says another (a live release whose
  go-live was never queued, a gray one at another weight, a rolled-back one whose cut never was, the last only
  within ROLLGATE_RECONCILE_CUT_WINDOW_SECONDS and while no later rollout exists): the change the release's status
  calls for is queued, so what the records say serves is what runs.

Sending again is safe: rollouts are claimed by compare-and-set, weights carry their sequence number (an old one
is never applied), and go-live / roll-back / cancel are idempotent on every driver.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, IntegerField, OuterRef, Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from deploy import rollouts
from deploy.models import Rollout, RolloutStatus
from deploy.queue import enqueue_on_commit
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.durable import SweepReport, redrive_due
from releases.models import Release

log = logging.getLogger("rollgate.deploy")
S, RS = ReleaseStatus, RolloutStatus
BATCH = 200

# What a release's status calls for on the target, once its rollout succeeded: the task of its newest traffic
# change must be one of these.
EXPECTED_TRAFFIC: dict[str, tuple[str, ...]] = {
    S.GRAY: ("deploy.set_weight",),
    S.PAUSED: ("deploy.set_weight",),
    S.LIVE: ("deploy.go_live",),
    S.ROLLED_BACK: ("deploy.roll_back", "deploy.rollout_cancel"),
    S.BLOCKED: ("deploy.roll_back",),
}


@dataclass
class DeploySweepReport(SweepReport):
    rollouts_created: list[int] = field(default_factory=list)  # release ids
    rollouts_requeued: list[int] = field(default_factory=list)
    rollouts_taken_over: list[int] = field(default_factory=list)
    traffic_resent: list[int] = field(default_factory=list)
    traffic_reconciled: list[int] = field(default_factory=list)


def deploy_sweep(*, now: dt.datetime | None = None) -> DeploySweepReport:
    now = now or timezone.now()
    report = DeploySweepReport()
    settled = now - dt.timedelta(seconds=settings.ROLLGATE_REDRIVE_AFTER_SECONDS)
    on_a_target = ~Q(environment__deploy_target=DeployTargetKind.NONE)

    # 1. Deploying releases whose rollout row was never created.
    missing = (Release.objects.filter(on_a_target, status=S.DEPLOYING, status_changed_at__lt=settled)
               .filter(~Exists(Rollout.objects.filter(release=OuterRef("pk"))))
               .values_list("pk", flat=True)[:BATCH])
    for release_id in missing:
        if rollouts.rollout_create(release_id=release_id) is not None:
            report.rollouts_created.append(release_id)

    # 2. Pending rollouts of deploying releases, queued a while ago and never claimed.
    waiting = (Rollout.objects.filter(status=RS.PENDING, release__status=S.DEPLOYING)
               .annotate(since=Coalesce("queued_at", "created_at")).filter(since__lt=settled)
               .values_list("pk", "release_id", "queued_at", "since", "redrives")[:BATCH])
    for rollout_id, release_id, queued_at, since, redrives in waiting:
        if redrive_due(since, redrives, now) and _requeue(rollout_id, RS.PENDING, queued_at):
            report.rollouts_requeued.append(release_id)

    # 3. Running rollouts whose worker stopped beating: the new delivery takes them over (attempt + 1).
    stale = now - dt.timedelta(seconds=settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS)
    orphaned = (Rollout.objects.filter(status=RS.RUNNING).filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at=None))
                .values_list("pk", "release_id", "attempt", "heartbeat_at", "queued_at", "redrives")[:BATCH])
    for rollout_id, release_id, attempt, heartbeat_at, queued_at, redrives in orphaned:
        if attempt >= settings.ROLLGATE_WORK_MAX_ATTEMPTS:
            rollouts.rollout_mark_failed(release_id=release_id, reason=(
                f"worker lost {attempt} times: each worker that ran this rollout stopped responding"))
            continue
        first = queued_at is None or heartbeat_at is None or queued_at < heartbeat_at
        if (first or redrive_due(queued_at, redrives, now)) and _requeue(rollout_id, RS.RUNNING, queued_at):
            report.rollouts_taken_over.append(release_id)

    # 4. The newest traffic change was never applied (lost, or sent and failed): send it again, with backoff.
    lagging = (Rollout.objects.filter(traffic_applied_seq__lt=F("traffic_seq"), traffic_queued_at__lt=settled)
               .exclude(traffic_task="")
               .values_list("pk", "release_id", "traffic_queued_at", "traffic_redrives")[:BATCH])
    for rollout_id, release_id, queued_at, redrives in lagging:
        if redrive_due(queued_at, redrives, now) and _resend_traffic(rollout_id, queued_at):
            report.traffic_resent.append(release_id)

    # 5. Records and the newest traffic change disagree: queue what the release's status calls for.
    weight = Cast(KeyTextTransform("1", "traffic_args"), IntegerField())
    disagree = Q()
    for status, tasks in EXPECTED_TRAFFIC.items():
        disagree |= Q(release__status=status) & ~Q(traffic_task__in=tasks)
    disagree |= Q(release__status__in=[S.GRAY, S.PAUSED], traffic_task="deploy.set_weight") & ~Q(
        traffic_weight=F("release__gray_weight"))
    # A cut (rolled back, blocked) is only re-applied while it is recent and no later rollout of the same service
    # and environment exists: re-cutting an old release must never touch the traffic of a newer canary.
    newer = Rollout.objects.filter(release__service=OuterRef("release__service"),
                                   release__environment=OuterRef("release__environment"),
                                   created_at__gt=OuterRef("created_at"))
    cut = Q(release__status__in=[S.ROLLED_BACK, S.BLOCKED])
    recent_cut = cut & Q(release__status_changed_at__gte=now - dt.timedelta(
        seconds=settings.ROLLGATE_RECONCILE_CUT_WINDOW_SECONDS)) & ~Exists(newer)
    out_of_line = (Rollout.objects.filter(status=RS.SUCCEEDED, release__status_changed_at__lt=settled)
                   .filter(~Q(release__environment__deploy_target=DeployTargetKind.NONE))
                   .filter(~cut | recent_cut)
                   .annotate(traffic_weight=weight).filter(disagree)
                   .values_list("release_id", "release__status", "release__gray_weight")[:BATCH])
    for release_id, status, gray_weight in out_of_line:
        task = EXPECTED_TRAFFIC[status][0]
        args = [release_id, gray_weight] if task == "deploy.set_weight" else [release_id]
        rollouts.traffic_change_queue(release_id=release_id, task=task, args=args)
        report.traffic_reconciled.append(release_id)

    if report.total:
        log.warning("sweeper: queued lost deploy work again: %s", report.as_dict())
    return report


def _requeue(rollout_id: int, status: str, queued_at: dt.datetime | None) -> bool:
    with transaction.atomic():
        rows = Rollout.objects.select_for_update(skip_locked=True).filter(pk=rollout_id, status=status)
        rows = rows.filter(queued_at=queued_at) if queued_at is not None else rows.filter(queued_at=None)
        rollout = rows.first()
        if rollout is None:
            return False
        rollouts.rollout_log_append(rollout_id=rollout.pk,
                                    line="queued again: its task was lost or its worker stopped responding")
        rollouts.rollout_queue(rollout, redrive=True)
    return True


def _resend_traffic(rollout_id: int, queued_at: dt.datetime) -> bool:
    with transaction.atomic():
        rollout = (Rollout.objects.select_for_update(skip_locked=True)
                   .filter(pk=rollout_id, traffic_queued_at=queued_at).first())
        if rollout is None or rollout.traffic_applied_seq >= rollout.traffic_seq:
            return False
        Rollout.objects.filter(pk=rollout.pk).update(traffic_queued_at=timezone.now(),
                                                     traffic_redrives=F("traffic_redrives") + 1)
        enqueue_on_commit(rollout.traffic_task, *rollout.traffic_args)
    return True
