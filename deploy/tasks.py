"""Celery tasks of the deploy app. Thin: they take ids, re-read, and call deploy.rollouts or a driver.

One task per release transition, queued by the table in deploy/receivers.py. Tasks return quietly when the release
has moved on (a later transition queued its own task), so a redelivered or late task changes nothing. A task that
fails writes a "deploy.failed" audit row (shown on the release timeline) instead of leaving the failure in a worker
log only.
"""
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.contrib.auth import get_user_model
from django.db import transaction

from deploy import rollouts, sweeper
from deploy.drivers import driver_for
from deploy.models import DeployRevision
from deploy.targets.base import TargetError
from releases import durable
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import AgentService, Environment, Release
from releases.services import Actor, audit_record

logger = logging.getLogger("rollgate.deploy")
S = ReleaseStatus
DATABASE_DOWN_RETRIES = 10  # about ten minutes with the backoff cap; then the sweeper has it


def _log(line: str, *_level) -> None:
    logger.info("%s", line)


def _failed(release: Release, what: str, error: Exception) -> None:
    logger.warning("%s of release #%s failed: %s", what, release.pk, error)
    with transaction.atomic():
        audit_record(actor=Actor.system("deploy"), action="deploy.failed", object_type="release",
                     object_id=release.pk, release=release, to_state=release.status,
                     reason=f"{what} on {release.environment.deploy_target} failed: {error}"[:1000])


def _run(release_id: int, expected: set[str], what: str, call) -> str:
    release = Release.objects.select_related("environment", "service").filter(pk=release_id).first()
    if release is None or release.status not in expected:
        return "stale"
    try:
        call(driver_for(release.environment.deploy_target))
    except TargetError as error:
        _failed(release, what, error)
        return "failed"
    except Exception as error:  # a bad target_settings value or a driver bug: still visible on the timeline
        logger.exception("%s of release #%s crashed", what, release.pk)
        _failed(release, what, TargetError(f"unexpected {type(error).__name__}"))
        return "failed"
    return "done"


def _backoff(retries: int) -> float:
    return min(settings.ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS, 2.0 * 2**retries)


@shared_task(name="deploy.rollout_run", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def rollout_run(self, release_id: int, takeover_check: bool = False) -> str:
    try:
        result = rollouts.rollout_execute(release_id=release_id, task_id=self.request.id or "", log_line=_log)
    except durable.DATABASE_DOWN:
        # Never a reason to fail the rollout: try again later, then leave it to the sweeper (deploy/sweeper.py).
        durable.reconnect()
        logger.warning("rollout of release #%s: database unavailable; trying again later", release_id)
        if self.request.retries >= DATABASE_DOWN_RETRIES:
            return "database unavailable"
        raise self.retry(countdown=_backoff(self.request.retries)) from None
    except Exception as exc:  # the claim or the bookkeeping itself failed
        logger.exception("rollout of release #%s failed before its outcome was recorded", release_id)
        result = rollouts.RolloutResult("retry", f"{type(exc).__name__}: {exc}")
    if result.outcome == "not_claimed":
        # Held by another worker: maybe one that died a moment ago (its message came back at once). Ask again when
        # its heartbeat goes stale, instead of dropping the message and waiting for the sweeper.
        # One such check at a time, and a check never schedules another (see pipelines.tasks.run_stage).
        wait = None if takeover_check else rollouts.rollout_takeover_in(release_id=release_id)
        if wait is not None and cache.add(f"deploy:takeover-check:{release_id}", 1, timeout=int(wait) + 5):
            rollout_run.apply_async(args=[release_id], kwargs={"takeover_check": True}, countdown=wait + 0.5)
            return "held"
    if result.outcome != "retry":
        return result.outcome
    if self.request.retries >= settings.ROLLGATE_PIPELINE_TRANSIENT_RETRIES:
        rollouts.rollout_mark_failed(release_id=release_id, reason=f"gave up after {self.request.retries + 1} "
                                                                   f"attempts; last error: {result.reason}")
        return "failed"
    raise self.retry(countdown=_backoff(self.request.retries))


def _traffic(release_id: int, seq: int | None, outcome: str) -> str:
    """Note a traffic change as applied (or moot: the release moved on) so the sweeper leaves it alone; a failed
    one stays due and is sent again."""
    if outcome in ("done", "stale", "cancelled"):
        rollouts.traffic_change_done(release_id=release_id, seq=seq)
    return outcome


@shared_task(name="deploy.rollout_cancel", acks_late=True)
def rollout_cancel(release_id: int, seq: int | None = None) -> str:
    release = Release.objects.select_related("environment").filter(pk=release_id).first()
    if release is None:
        return "stale"
    try:
        return _traffic(release_id, seq, rollouts.rollout_cancel(release_id=release_id))
    except TargetError as error:
        _failed(release, "cancelling the rollout", error)
        return "failed"


@shared_task(name="deploy.set_weight", acks_late=True)
def deploy_set_weight(release_id: int, weight: int, seq: int | None = None) -> str:
    release = Release.objects.select_related("environment").filter(pk=release_id).first()
    if release is None or release.gray_weight != weight or release.status not in (S.GRAY, S.PAUSED):
        return _traffic(release_id, seq, "stale")
    what = f"moving {weight} % of traffic to the canary"
    try:
        return _traffic(release_id, seq,
                        rollouts.rollout_set_weight(release_id=release_id, weight=weight, seq=seq, log_line=_log))
    except TargetError as error:
        _failed(release, what, error)
        return "failed"
    except Exception as error:
        logger.exception("%s of release #%s crashed", what, release.pk)
        _failed(release, what, TargetError(f"unexpected {type(error).__name__}"))
        return "failed"


@shared_task(name="deploy.go_live", acks_late=True)
def deploy_go_live(release_id: int, seq: int | None = None) -> str:
    return _traffic(release_id, seq, _run(release_id, {S.LIVE}, "going live",
                                          lambda driver: driver.go_live(release_id=release_id, log=_log)))


@shared_task(name="deploy.roll_back", acks_late=True)
def deploy_roll_back(release_id: int, seq: int | None = None) -> str:
    return _traffic(release_id, seq, _run(release_id, {S.ROLLED_BACK, S.BLOCKED}, "rolling back",
                                          lambda driver: driver.roll_back(release_id=release_id, log=_log)))


@shared_task(name="deploy.revision_rollback", acks_late=True)
def deploy_revision_rollback(revision_id: int, user_id: int | None = None, actor_name: str = "deploy") -> str:
    row = DeployRevision.objects.select_related("environment", "service", "release").filter(pk=revision_id).first()
    if row is None:
        return "stale"
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    actor = Actor(user=user, name=actor_name)
    try:
        driver_for(row.environment.deploy_target).revision_rollback(revision_id=row.pk, actor=actor, log=_log)
    except TargetError as error:
        logger.warning("rollback to revision %s failed: %s", row.number, error)
        with transaction.atomic():
            audit_record(actor=Actor.system("deploy"), action="deploy.failed", object_type="deploy_revision",
                         object_id=row.pk, release=row.release, service=row.service, environment=row.environment,
                         reason=f"rollback to {row.number} failed: {error}"[:1000])
        return "failed"
    return "done"


@shared_task(name="deploy.scale_down_idle", acks_late=True)
def deploy_scale_down_idle(service_id: int, environment_id: int) -> str:
    service = AgentService.objects.filter(pk=service_id).first()
    environment = Environment.objects.filter(pk=environment_id).first()
    if service is None or environment is None or environment.deploy_target != DeployTargetKind.KUBERNETES:
        return "stale"
    try:
        # Idempotent: the target scales down only the colour the Service does not select, and only once.
        driver_for(environment.deploy_target).scale_down_idle(service_name=service.name, environment=environment,
                                                              log=_log)
    except TargetError as error:
        logger.warning("idle colour scale-down of %s in %s failed: %s", service.name, environment.name, error)
        return "failed"
    return "done"


@shared_task(name="deploy.sweep", ignore_result=True)
def sweep() -> dict:
    return sweeper.deploy_sweep().as_dict()
