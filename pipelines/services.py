"""Every write to pipelines, stages, their logs and artefacts, and webhook endpoints.

Worker transitions are compare-and-set on (stage id, status, attempt): the attempt number is the fencing token,
so a worker that lost its stage (taken over after it stopped beating, or reaped) cannot overwrite the outcome.
Interactive ones (retry, scan override) lock the pipeline row. Live events go to the release's group on commit;
Celery tasks are enqueued on commit; webhooks are called outside any transaction (in their own task).

Lock order (releases/services.py): every transaction here that changes the release, or may, first locks the
release (worker transitions: the release alone; people's retry and override: its service, then the release),
then the pipeline and its stages.
"""
from __future__ import annotations

import datetime as dt
import logging

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from pipelines.integrations import notify
from pipelines.models import (
    BUILD_STAGES,
    PIPELINE_TRANSITIONS,
    STAGE_ORDER,
    STAGE_TRANSITIONS,
    Artefact,
    LogLevel,
    Pipeline,
    PipelineStatus,
    Stage,
    StageLogLine,
    StageName,
    StageStatus,
    WebhookEndpoint,
)
from releases import events, policy
from releases.choices import ReleaseStatus
from releases.errors import InvalidInput, NotFound, TransitionNotAllowed
from releases.models import Release
from releases.services import Actor, approvals_mark_stale, audit_record, release_lock, release_worker_transition, \
    require_permission

log = logging.getLogger(__name__)

P, T, R = PipelineStatus, StageStatus, ReleaseStatus
SYSTEM = "pipeline"
CI_FAILED_LABEL = "ci_failed"
OVERRIDE_REASON_MIN = 10
_BUILD_NAMES = frozenset(BUILD_STAGES)



# --- live events and enqueueing ------------------------------------------------------------------------------


def _stage_event(stage: Stage, release_id: int) -> None:
    events.send_event_on_commit(
        [events.release_group(release_id)], "pipeline.stage",
        {"release_id": release_id, "pipeline_id": stage.pipeline_id, "stage": stage.name, "status": stage.status,
         "attempt": stage.attempt},
    )


def _enqueue(task_name: str, *args) -> None:
    """Queue a task by its stable name on commit: the tasks module imports this one, never the reverse.

    robust: with the broker down the send fails after the change committed; the caller's answer stands and the
    sweeper (pipelines/sweeper.py) finds the work again from the rows."""
    transaction.on_commit(lambda: current_app.tasks[task_name].apply_async(args=list(args)), robust=True)


def _enqueue_stage(stage_id: int, *, redrive: bool = False) -> None:
    """Queue a stage's task on commit and note when: a stage queued long ago and still pending lost its message."""
    fields = {"queued_at": timezone.now()}
    if redrive:
        fields["redrives"] = F("redrives") + 1
    Stage.objects.filter(pk=stage_id).update(**fields)
    _enqueue("pipelines.run_stage", stage_id)


def _enqueue_notification(stage_id: int) -> None:
    _enqueue("pipelines.notify_stage_failure", stage_id)


def _release_id_of(pipeline_id: int) -> int:
    return Pipeline.objects.values_list("release_id", flat=True).get(pk=pipeline_id)


def _stage_move(rows, *, from_statuses, to_status: str, **fields) -> int:
    """Every stage status write: checked against STAGE_TRANSITIONS, then compare-and-set on ``from_statuses``.
    Returns how many rows moved (0: someone else moved them first)."""
    illegal = sorted(s for s in from_statuses if to_status not in STAGE_TRANSITIONS[s])
    if illegal:
        raise TransitionNotAllowed(gettext("a stage cannot go from %(illegal)s to %(to_status)s") % {
                                       "illegal": ', '.join(illegal), "to_status": to_status}, field="status")
    return rows.filter(status__in=list(from_statuses)).update(status=to_status, **fields)


def _pipeline_move(pipeline_id: int, to_status: str, *, from_statuses=None, **fields) -> bool:
    """Every pipeline status write: only from a status the map lets reach ``to_status`` (all of them when
    ``from_statuses`` is not given); an explicit illegal source raises."""
    sources = [s for s, nxt in PIPELINE_TRANSITIONS.items() if to_status in nxt]
    if from_statuses is not None:
        illegal = sorted(s for s in from_statuses if s not in sources)
        if illegal:
            raise TransitionNotAllowed(gettext("a pipeline cannot go from %(illegal)s to %(to_status)s") % {
                                           "illegal": ', '.join(illegal), "to_status": to_status},
                                       field="status")
        sources = list(from_statuses)
    return bool(Pipeline.objects.filter(pk=pipeline_id, status__in=sources).update(status=to_status, **fields))


def _lock_release_of_stage(stage_id: int) -> Release | None:
    """The release, locked before the stage and pipeline rows (the lock order), for a worker transaction: the
    release alone (release_lock(service=False)), found through the stage in the same statement."""
    return (Release.objects.select_for_update(no_key=True, of=("self",)).only("id", "status")
            .filter(pipelines__stages__pk=stage_id).first())


# --- start ---------------------------------------------------------------------------------------------------


def _build_of(release: Release) -> Pipeline | None:
    """Build once: the pipeline that built, scanned and pushed this version (service, tag, commit) for another
    release, or None when it has not been built yet. Its prepare stage proves the image is still in the registry."""
    if not release.version.image_digest:
        return None
    return (Pipeline.objects.filter(release__version_id=release.version_id, status=P.SUCCEEDED,
                                    reused_from__isnull=True)
            .exclude(release_id=release.pk).order_by("-id").first())


def pipeline_stop_reuse(*, pipeline_id: int, stage_id: int, reason: str) -> None:
    """The reused image is gone from the registry (or the tag moved): this pipeline builds it again instead."""
    with transaction.atomic():
        Pipeline.objects.filter(pk=pipeline_id).update(reused_from=None)
        stage_log_append(stage_id=stage_id, message=f"{reason}; building the image again", level=LogLevel.WARNING)



def pipeline_start(*, release_id: int) -> Pipeline | None:
    """Create the pipeline of a pending release and queue its first stage. Idempotent: one pipeline per release."""
    with transaction.atomic():
        try:
            release = release_lock(release_id, service=False)
        except NotFound:
            return None
        existing = Pipeline.objects.filter(release=release).first()
        if existing is not None or release.status != R.PENDING:
            return existing
        pipeline = Pipeline.objects.create(release=release, reused_from=_build_of(release))
        Stage.objects.bulk_create([Stage(pipeline=pipeline, name=name, position=index)
                                   for index, name in enumerate(STAGE_ORDER)])
        first = pipeline.stages.get(name=StageName.PREPARE)
        _stage_event(first, release.pk)
        _enqueue_stage(first.pk)
    return pipeline


# --- claiming and running (called by the stage task) -----------------------------------------------------------


def stage_claim(*, stage_id: int, task_id: str) -> Stage | None:
    """Claim a pending stage, or take over a running one whose worker stopped beating. None: someone else has it.

    Returns the stage with its new attempt number; every later write of this run passes that attempt."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS)
    fields = dict(task_id=task_id[:80], attempt=F("attempt") + 1, started_at=now,
                  finished_at=None, heartbeat_at=now, failure_reason="")
    with transaction.atomic():
        release = _lock_release_of_stage(stage_id)
        if release is None:
            return None
        release_status = release.status
        if release_status not in (R.PENDING, R.BUILDING) and _stage_move(
                Stage.objects.filter(pk=stage_id, name__in=BUILD_STAGES), from_statuses=[T.PENDING],
                to_status=T.SKIPPED, failure_reason=f"release is {release_status}; nothing to build"):
            return None
        claimed = _stage_move(Stage.objects.filter(pk=stage_id), from_statuses=[T.PENDING], to_status=T.RUNNING,
                              **fields)
        took_over = False
        if not claimed:
            claimed = _stage_move(Stage.objects.filter(pk=stage_id, heartbeat_at__lt=stale),
                                  from_statuses=[T.RUNNING], to_status=T.RUNNING, **fields)
            took_over = bool(claimed)
        if not claimed:
            return None
        stage = Stage.objects.select_related("pipeline").get(pk=stage_id)
        pipeline = stage.pipeline
        release_id = pipeline.release_id
        if pipeline.status != P.RUNNING or pipeline.started_at is None:
            _pipeline_move(pipeline.pk, P.RUNNING, from_statuses=[P.PENDING, P.WAITING, P.RUNNING],
                           started_at=pipeline.started_at or now)
        if took_over:
            _log_line(stage, release_id, f"taking over attempt {stage.attempt}: the previous worker stopped "
                                         f"responding", LogLevel.WARNING)
        if stage.name in _BUILD_NAMES:
            release_worker_transition(release_id=release_id, from_statuses={R.PENDING}, to_status=R.BUILDING,
                                      actor_name=SYSTEM, action="pipeline.started")
        _stage_event(stage, release_id)
    return stage


def stage_requeue(*, stage_id: int) -> None:
    """The sweeper found the stage's work lost (pipelines/sweeper.py): send its task again, noted on the stage."""
    stage = Stage.objects.select_related("pipeline").get(pk=stage_id)
    _log_line(stage, stage.pipeline.release_id, "queued again: its task was lost or its worker stopped responding",
              LogLevel.WARNING)
    _enqueue_stage(stage_id, redrive=True)


def stage_takeover_in(*, stage_id: int) -> float | None:
    """Seconds until a running stage may be taken over (its heartbeat goes stale); None when it is not running.

    A message redelivered because its worker died comes back within a second, while the stage still looks held:
    the task asks again then instead of dropping the message (the sweeper would only find it much later)."""
    heartbeat_at = Stage.objects.filter(pk=stage_id, status=T.RUNNING).values_list("heartbeat_at", flat=True).first()
    if heartbeat_at is None:
        return None
    stale_at = heartbeat_at + dt.timedelta(seconds=settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS)
    return max(0.0, (stale_at - timezone.now()).total_seconds())


def stage_heartbeat(*, stage_id: int, attempt: int) -> bool:
    """Sign of life from the worker running `attempt`; False when the stage is no longer ours."""
    return bool(Stage.objects.filter(pk=stage_id, status=T.RUNNING, attempt=attempt)
                .update(heartbeat_at=timezone.now()))


def _log_line(stage: Stage, release_id: int, message: str, level: str = LogLevel.INFO) -> StageLogLine:
    line = StageLogLine.objects.create(stage=stage, time=timezone.now(), level=level,
                                       message=notify.redact(message)[:10000])
    events.send_event_on_commit(
        [events.release_group(release_id)], "pipeline.log",
        {"release_id": release_id, "pipeline_id": stage.pipeline_id, "stage": stage.name, "line_id": line.pk,
         "level": level},
    )
    return line


def stage_log_append(*, stage_id: int, message: str, level: str = LogLevel.INFO,
                     release_id: int | None = None) -> StageLogLine:
    """One structured log line (secrets redacted), announced live to the release page."""
    stage = Stage.objects.only("id", "name", "pipeline_id").get(pk=stage_id)
    if release_id is None:
        release_id = _release_id_of(stage.pipeline_id)
    return _log_line(stage, release_id, message, level)


def artefact_store(*, stage_id: int, kind: str, content: str) -> Artefact:
    artefact, _ = Artefact.objects.update_or_create(
        stage_id=stage_id, kind=kind, defaults={"content": content, "size_bytes": len(content.encode())})
    return artefact


def _finish(stage_id: int, attempt: int | None, to_status: str, reason: str = "",
            from_statuses=(T.RUNNING,)) -> Stage | None:
    """Compare-and-set a stage to a final-for-this-run status. None when the run no longer owns the stage."""
    qs = Stage.objects.filter(pk=stage_id)
    if attempt is not None:
        qs = qs.filter(attempt=attempt)
    if not _stage_move(qs, from_statuses=from_statuses, to_status=to_status, failure_reason=reason[:2000],
                       finished_at=timezone.now()):
        return None
    return Stage.objects.select_related("pipeline").get(pk=stage_id)


def stage_succeed(*, stage_id: int, attempt: int, skipped: str = "") -> bool:
    """The run succeeded (or, with `skipped` saying why, had nothing to do): record it and move on (next stage;
    after push the release is ready and the pipeline done)."""
    with transaction.atomic():
        _lock_release_of_stage(stage_id)
        stage = _finish(stage_id, attempt, T.SKIPPED if skipped else T.SUCCEEDED, skipped)
        if stage is None:
            return False
        pipeline = stage.pipeline
        release_id = pipeline.release_id
        if skipped:
            _log_line(stage, release_id, f"skipped: {skipped}")
        _stage_event(stage, release_id)
        if stage.name == StageName.PUSH:
            # CI is done: the pipeline ends here; the promotion's rollout is the deploy app's.
            _pipeline_move(pipeline.pk, P.SUCCEEDED, from_statuses=[P.RUNNING], finished_at=timezone.now())
            why = skipped or "image built, scanned and pushed"
            release_worker_transition(release_id=release_id, from_statuses={R.PENDING, R.BUILDING},
                                      to_status=R.READY, actor_name=SYSTEM, action="pipeline.succeeded",
                                      reason=why)
        else:
            following = STAGE_ORDER[STAGE_ORDER.index(stage.name) + 1]
            next_stage = pipeline.stages.get(name=following)
            if next_stage.status == T.PENDING:
                _enqueue_stage(next_stage.pk)
    return True


def stage_fail(*, stage_id: int, attempt: int | None, reason: str,
               from_statuses=(T.RUNNING,)) -> bool:
    """A stage failed for good: the pipeline fails with label ci_failed, the release goes ci_failed and the
    webhooks are told. The stage keeps its log."""
    reason = notify.redact(reason) or "failed without a reason"
    with transaction.atomic():
        _lock_release_of_stage(stage_id)
        stage = _finish(stage_id, attempt, T.FAILED, reason, from_statuses)
        if stage is None:
            return False
        pipeline = stage.pipeline
        release_id = pipeline.release_id
        labels = sorted(set(pipeline.labels) | {CI_FAILED_LABEL})
        _pipeline_move(pipeline.pk, P.FAILED, labels=labels, failure_reason=f"{stage.name}: {reason}"[:2000],
                       finished_at=timezone.now())
        _log_line(stage, release_id, f"stage failed: {reason}", LogLevel.ERROR)
        release_worker_transition(release_id=release_id, from_statuses={R.PENDING, R.BUILDING},
                                  to_status=R.CI_FAILED, actor_name=SYSTEM, action="pipeline.failed",
                                  reason=f"{stage.name} stage failed: {reason}")
        _stage_event(stage, release_id)
        _enqueue_notification(stage.pk)
    return True


def stage_mark_failed(*, stage_id: int, reason: str) -> bool:
    """Final failure from outside a run (retries exhausted, task crashed, reaper): whatever attempt holds it."""
    return stage_fail(stage_id=stage_id, attempt=None, reason=reason, from_statuses=(T.RUNNING, T.PENDING))


def stage_release_for_retry(*, stage_id: int, attempt: int, reason: str) -> bool:
    """A transient error: hand the stage back (running -> pending) so the retried task can claim it again."""
    with transaction.atomic():
        if not _stage_move(Stage.objects.filter(pk=stage_id, attempt=attempt), from_statuses=[T.RUNNING],
                           to_status=T.PENDING, failure_reason=reason[:2000]):
            return False
        stage_log_append(stage_id=stage_id, message=f"transient error, will retry: {reason}",
                         level=LogLevel.WARNING)
    return True


def stage_block(*, stage_id: int, attempt: int, reason: str) -> bool:
    """The scan found a Critical finding: the release is blocked and its image is never pushed."""
    with transaction.atomic():
        _lock_release_of_stage(stage_id)
        stage = _finish(stage_id, attempt, T.BLOCKED, reason)
        if stage is None:
            return False
        pipeline = stage.pipeline
        _pipeline_move(pipeline.pk, P.BLOCKED, failure_reason=f"{stage.name}: {reason}"[:2000],
                       finished_at=timezone.now())
        _log_line(stage, pipeline.release_id, f"release blocked: {reason}", LogLevel.ERROR)
        release_worker_transition(release_id=pipeline.release_id, from_statuses={R.PENDING, R.BUILDING},
                                  to_status=R.BLOCKED, actor_name=SYSTEM, action="pipeline.blocked",
                                  reason=f"security scan: {reason}")
        _stage_event(stage, pipeline.release_id)
        _enqueue_notification(stage.pk)
        # Approvals of the same version elsewhere were given before this scan: they go stale (after commit, each
        # release locked on its own, so this transaction's locks never wait on another release's).
        blocked = Release.objects.select_related("version").get(pk=pipeline.release_id)
        transaction.on_commit(lambda: approvals_mark_stale(
            service_id=blocked.service_id, tag=blocked.version.tag, exclude_release_id=blocked.pk,
            actor_name=SYSTEM, reason=f"a scan of {blocked.version.tag} (release #{blocked.pk}) found what blocks "
                                      f"it: {reason}"[:1000]))
    return True


def stage_wait_for_override(*, stage_id: int, attempt: int, reason: str) -> bool:
    """The scan found High findings or could not verify the image: the pipeline waits for a release_manager
    override (with a written reason) before pushing."""
    with transaction.atomic():
        stage = _finish(stage_id, attempt, T.WAITING, reason)
        if stage is None:
            return False
        _pipeline_move(stage.pipeline_id, P.WAITING, from_statuses=[P.RUNNING])
        _log_line(stage, stage.pipeline.release_id, f"waiting for a scan override: {reason}", LogLevel.WARNING)
        _stage_event(stage, stage.pipeline.release_id)
    return True


# --- people: retry and scan override -------------------------------------------------------------------------


def _lock_pipeline(release_id: int) -> Pipeline:
    release_lock(release_id)  # the lock order: service, release, then the pipeline
    pipeline = Pipeline.objects.select_for_update().filter(release_id=release_id).order_by("-id").first()
    if pipeline is None:
        raise NotFound(gettext("release #%(release_id)s has no pipeline") % {"release_id": release_id})
    return pipeline


def pipeline_retry_from_failed_stage(*, actor: Actor, release_id: int) -> Pipeline:
    """Run a failed pipeline again from the stage that failed; earlier successful stages are kept."""
    require_permission(actor, policy.PIPELINE_RUN)
    with transaction.atomic():
        pipeline = _lock_pipeline(release_id)
        if pipeline.status != P.FAILED:
            raise TransitionNotAllowed(gettext("pipeline #%(pipeline_id)s is %(status)s; only a failed "
                                               "pipeline can be retried") % {
                                           "pipeline_id": pipeline.pk, "status": pipeline.status})
        failed = pipeline.stages.filter(status=T.FAILED).order_by("position").first()
        if failed is None or failed.name not in _BUILD_NAMES:
            raise TransitionNotAllowed(
                gettext("pipeline #%(pipeline_id)s failed outside its build stages; create a new release") % {
                    "pipeline_id": pipeline.pk})
        release_status = Release.objects.values_list("status", flat=True).get(pk=release_id)
        if release_status != R.CI_FAILED:
            raise TransitionNotAllowed(gettext("release #%(release_id)s is %(release_status)s, not "
                                               "ci_failed; nothing to retry") % {
                                           "release_id": release_id, "release_status": release_status})
        fresh = dict(task_id="", failure_reason="", started_at=None, finished_at=None, heartbeat_at=None)
        later = pipeline.stages.filter(position__gte=failed.position)
        _stage_move(later, from_statuses=[T.FAILED], to_status=T.PENDING, **fresh)
        later.filter(status=T.PENDING).update(**fresh)
        labels = [label for label in pipeline.labels if label != CI_FAILED_LABEL]
        _pipeline_move(pipeline.pk, P.RUNNING, from_statuses=[P.FAILED], labels=labels, failure_reason="",
                       finished_at=None)
        # One audit row for the retry: the release's ci_failed -> building, with the person who asked.
        release_worker_transition(release_id=release_id, from_statuses={R.CI_FAILED}, to_status=R.BUILDING,
                                  actor_name=actor.name, actor=actor, action="pipeline.retry",
                                  reason=f"retry of pipeline #{pipeline.pk} from the {failed.name} stage")
        failed.status = T.PENDING
        _log_line(failed, release_id, f"retry requested by {actor.name}", LogLevel.INFO)
        _stage_event(failed, release_id)
        _enqueue_stage(failed.pk)
    pipeline.refresh_from_db()
    return pipeline


def scan_override(*, actor: Actor, release_id: int, reason: str) -> Pipeline:
    """A release_manager accepts, in writing, what a scan could not clear (High findings, or checks that could not
    be verified: scanner missing, no vulnerability data); the image is then pushed. Critical findings block for
    good and cannot be overridden. The override is audited, shown on the release page and in approval evidence."""
    require_permission(actor, policy.SCAN_OVERRIDE)
    reason = (reason or "").strip()
    if len(reason) < OVERRIDE_REASON_MIN:
        raise InvalidInput(gettext("reason: an override needs a written reason of at least "
                                   "%(least)s characters") % {
                               "least": OVERRIDE_REASON_MIN}, field="reason")
    with transaction.atomic():
        pipeline = _lock_pipeline(release_id)
        scan = pipeline.stages.get(name=StageName.SCAN)
        release_status = Release.objects.values_list("status", flat=True).get(pk=release_id)
        if release_status != R.BUILDING:
            raise TransitionNotAllowed(gettext("release #%(release_id)s is %(release_status)s; an "
                                               "override only lets a building release continue to its push") % {
                                           "release_id": release_id, "release_status": release_status})
        if scan.status != T.WAITING:
            raise TransitionNotAllowed(gettext("nothing to override: the scan stage of pipeline "
                                               "#%(pipeline_id)s is %(status)s; only High findings and "
                                               "unverified checks wait for an override (Critical ones "
                                               "block for good)") % {
                                           "pipeline_id": pipeline.pk, "status": scan.status})
        overridden = scan.failure_reason  # what the scan could not clear, in its words
        _finish(scan.pk, None, T.SUCCEEDED, "", from_statuses=(T.WAITING,))
        _pipeline_move(pipeline.pk, P.RUNNING, from_statuses=[P.WAITING], scan_override_by=actor.name,
                       scan_override_reason=reason, scan_override_findings=overridden[:2000])
        release = Release.objects.get(pk=release_id)
        audit_record(actor=actor, action="scan.override", object_type="pipeline", object_id=pipeline.pk,
                     release=release, from_state=T.WAITING, to_state=T.SUCCEEDED, reason=reason,
                     details={"overridden": overridden})
        scan.status = T.SUCCEEDED
        _log_line(scan, release_id, f"scan overridden by {actor.name} ({overridden}): {reason}", LogLevel.WARNING)
        _stage_event(scan, release_id)
        push = pipeline.stages.get(name=StageName.PUSH)
        if push.status == T.PENDING:
            _enqueue_stage(push.pk)
    pipeline.refresh_from_db()
    return pipeline


# --- housekeeping (beat tasks) -------------------------------------------------------------------------------


def stages_reap_stale(*, now: dt.datetime | None = None) -> int:
    """Fail running stages past their time limit. Returns how many. (A stage whose worker stopped beating is not
    failed: the sweeper queues it again and a live worker takes it over, pipelines/sweeper.py.)"""
    now = now or timezone.now()
    limits = settings.ROLLGATE_PIPELINE_STAGE_TIME_LIMITS
    reaped = 0
    for stage in Stage.objects.filter(status=T.RUNNING).only("id", "name", "attempt", "started_at"):
        limit = float(limits.get(stage.name, 1800))
        if not (stage.started_at and (now - stage.started_at).total_seconds() > limit):
            continue
        reason = f"{stage.name} ran longer than its {limit:g} s limit (reaped)"
        if stage_fail(stage_id=stage.pk, attempt=stage.attempt, reason=reason):
            reaped += 1
    return reaped


def stage_logs_prune(*, now: dt.datetime | None = None, days: int | None = None) -> int:
    days = settings.ROLLGATE_PIPELINE_LOG_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    deleted, _ = StageLogLine.objects.filter(time__lt=cutoff).delete()
    return deleted


# --- failure notifications -----------------------------------------------------------------------------------


def stage_failure_notify(*, stage_id: int) -> list[notify.WebhookDelivery]:
    """Tell every enabled webhook that a stage failed or blocked. Outside any transaction; never raises."""
    stage = Stage.objects.select_related("pipeline__release__service", "pipeline__release__version",
                                         "pipeline__release__environment").get(pk=stage_id)
    # Claim first: a redelivered task (acks_late) must not post the same failure twice.
    finished = stage.finished_at.timestamp() if stage.finished_at else 0
    if not cache.add(f"pipelines:notified:{stage.pk}:{stage.attempt}:{finished}", 1, timeout=7 * 24 * 3600):
        return []
    pipeline, release = stage.pipeline, stage.pipeline.release
    tail = list(stage.log_lines.order_by("-id").values_list("message", flat=True)[:10])[::-1]
    failure = notify.StageFailure(
        service=release.service.name, version=release.version.tag, environment=release.environment.name,
        pipeline_id=pipeline.pk, stage=stage.name, reason=stage.failure_reason or pipeline.failure_reason,
        release_url=f"{settings.ROLLGATE_PUBLIC_URL.rstrip('/')}/releases/{release.pk}/",
        log_tail=tuple(tail),
        labels=tuple(pipeline.labels) if stage.status == T.FAILED else ("blocked",),
    )
    webhooks = [notify.Webhook(url=w.url, fmt=w.format, name=w.name, signing_secret=w.signing_secret)
                for w in WebhookEndpoint.objects.filter(enabled=True)]
    deliveries = notify.stage_failure_notify(webhooks=webhooks, failure=failure)
    for delivery in deliveries:
        text = "delivered" if delivery.delivered else f"not delivered: {delivery.error}"
        _log_line(stage, release.pk, f"notification to webhook '{delivery.name}' ({delivery.fmt}): {text}",
                  LogLevel.INFO if delivery.delivered else LogLevel.WARNING)
    return deliveries


# --- webhook endpoints (ops) ---------------------------------------------------------------------------------

WEBHOOK_EDITABLE = ("name", "url", "format", "signing_secret", "enabled")


def webhook_endpoint_create(*, actor: Actor, name: str, url: str, format: str = "generic",
                            signing_secret: str = "", enabled: bool = True) -> WebhookEndpoint:
    require_permission(actor, policy.WEBHOOK_MANAGE)
    with transaction.atomic():
        if WebhookEndpoint.objects.filter(name=name).exists():
            raise TransitionNotAllowed(gettext("a webhook named '%(name)s' already exists") % {
                                           "name": name}, field="name")
        endpoint = WebhookEndpoint.objects.create(name=name, url=url, format=format, signing_secret=signing_secret,
                                                  enabled=enabled)
        audit_record(actor=actor, action="webhook.create", object_type="webhook", object_id=endpoint.pk,
                     details={"name": name, "url": endpoint.masked_url, "format": format, "enabled": enabled})
    return endpoint


def webhook_endpoint_update(*, actor: Actor, endpoint_id: int, changes: dict) -> WebhookEndpoint:
    require_permission(actor, policy.WEBHOOK_MANAGE)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
        if endpoint is None:
            raise NotFound(gettext("no webhook with id %(endpoint_id)s") % {"endpoint_id": endpoint_id})
        for key, value in changes.items():
            if key not in WEBHOOK_EDITABLE:
                raise InvalidInput(gettext("%(key)s: cannot be changed") % {"key": key}, field=key)
            setattr(endpoint, key, value)
        endpoint.save()
        shown = {k: ("[set]" if k in ("url", "signing_secret") else v) for k, v in changes.items()}
        audit_record(actor=actor, action="webhook.update", object_type="webhook", object_id=endpoint.pk,
                     details={"changes": shown, "url": endpoint.masked_url})
    return endpoint


def webhook_endpoint_delete(*, actor: Actor, endpoint_id: int) -> None:
    require_permission(actor, policy.WEBHOOK_MANAGE)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
        if endpoint is None:
            raise NotFound(gettext("no webhook with id %(endpoint_id)s") % {"endpoint_id": endpoint_id})
        audit_record(actor=actor, action="webhook.delete", object_type="webhook", object_id=endpoint.pk,
                     details={"name": endpoint.name, "url": endpoint.masked_url})
        endpoint.delete()
