"""Celery tasks that move traffic on a release's deploy target, and the receivers that queue them.

Receivers of releases.signals.release_transitioned (sent after commit) queue one task per transition for
environments with a deploy target (kubernetes, local): a new gray weight -> set_weight, live -> go_live,
rolled back -> roll_back. Tasks take ids, re-read the release and return quietly when it has moved on (a later
transition queued its own task), so a redelivered or late task changes nothing. A task that fails writes a
"deploy.failed" audit row (shown on the release timeline) instead of leaving the failure in a worker log only.
"""
import logging

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import receiver

from deploy.models import DeployRevision
from deploy.drivers import driver_for
from deploy.targets.base import TargetError
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import AgentService, Environment, Release
from releases.services import Actor, audit_record
from releases.signals import release_transitioned

logger = logging.getLogger("rollgate.deploy")
S = ReleaseStatus


def _log(line: str) -> None:
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


@shared_task(name="pipelines.deploy.set_weight", acks_late=True)
def deploy_set_weight(release_id: int, weight: int) -> str:
    if not Release.objects.filter(pk=release_id, gray_weight=weight).exists():
        return "stale"
    return _run(release_id, {S.GRAY, S.PAUSED}, f"moving {weight} % of traffic to the canary",
                lambda driver: driver.set_weight(release_id=release_id, weight=weight, log=_log))


@shared_task(name="pipelines.deploy.go_live", acks_late=True)
def deploy_go_live(release_id: int) -> str:
    return _run(release_id, {S.LIVE}, "going live",
                lambda driver: driver.go_live(release_id=release_id, log=_log))


@shared_task(name="pipelines.deploy.roll_back", acks_late=True)
def deploy_roll_back(release_id: int) -> str:
    return _run(release_id, {S.ROLLED_BACK, S.BLOCKED}, "rolling back",
                lambda driver: driver.roll_back(release_id=release_id, log=_log))


@shared_task(name="pipelines.deploy.revision_rollback", acks_late=True)
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


@shared_task(name="pipelines.deploy.scale_down_idle", acks_late=True)
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


def schedule_idle_scale_down(*, service_id: int, environment_id: int, delay_seconds: float) -> None:
    """Scale the idle blue-green colour down after ``delay_seconds`` (it stays warm for a quick switch back)."""
    transaction.on_commit(lambda: deploy_scale_down_idle.apply_async(
        args=[service_id, environment_id], countdown=max(0.0, float(delay_seconds))))


@receiver(release_transitioned, dispatch_uid="deploy.tasks.enqueue_traffic_change")
def enqueue_traffic_change(sender, *, release_id, from_status, to_status, from_weight, to_weight, **kwargs):
    kind = Release.objects.filter(pk=release_id).values_list("environment__deploy_target", flat=True).first()
    if kind in (None, DeployTargetKind.NONE):
        return  # nothing to drive: Rollgate only records the decision
    if to_status == S.GRAY and to_weight != from_weight:
        task, args = deploy_set_weight, [release_id, to_weight]
    elif to_status == S.LIVE and from_status != S.SUPERSEDED:
        # superseded -> live is a restore: the rollback of the release that replaced it moves the traffic.
        task, args = deploy_go_live, [release_id]
    elif to_status == S.ROLLED_BACK or (to_status == S.BLOCKED and from_status in (S.GRAY, S.PAUSED)):
        # Blocked by the SLA gate or a scan while serving traffic: take its traffic away like a rollback.
        task, args = deploy_roll_back, [release_id]
    else:
        return
    transaction.on_commit(lambda: task.apply_async(args=args))
