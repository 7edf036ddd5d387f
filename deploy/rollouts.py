"""Every write to Rollout rows: the one path from a promotion to the version running on the target.

A release that goes ready -> deploying gets one Rollout (deploy.receivers creates it and queues deploy.rollout_run).
The task claims the row like a pipeline stage (compare-and-set, attempt number as fencing token, a heartbeat while
the driver works), runs the driver with no transaction open, then records the outcome together with the release's
(release_rollout_finished) in one short transaction.

Rolling back a release that is still deploying cancels its rollout (deploy.rollout_cancel): the row goes cancelled
first, then the driver removes what the rollout started (the canary, or the first version when nothing else is
live) and never touches the stable. A rollout that finishes after it was cancelled finds the row cancelled and
removes what it just made, so nothing of a cancelled or failed version is left running.

Every status write goes through ROLLOUT_TRANSITIONS (_set_status); an illegal edge raises TransitionNotAllowed.
Lock order (releases/services.py): service, release, then the rollout row.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext

from deploy.drivers import driver_for
from deploy.queue import enqueue_on_commit
from deploy.models import ROLLOUT_TERMINAL, ROLLOUT_TRANSITIONS, Rollout, RolloutStatus
from deploy.targets.base import TargetError
from releases import durable, events
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.errors import TransitionNotAllowed
from releases.models import Release
from releases.services import Actor, audit_record, release_lock, release_rollout_finished

log = logging.getLogger("rollgate.deploy")
RS = RolloutStatus
ACTOR = "deploy"
LOG_MAX_CHARS = 20000


@dataclass(frozen=True)
class RolloutResult:
    outcome: str  # "not_claimed", "succeeded", "failed", "cancelled", "retry"
    reason: str = ""


def _check(rollout_id: int, from_status: str, to_status: str) -> None:
    if to_status not in ROLLOUT_TRANSITIONS[from_status]:
        raise TransitionNotAllowed(gettext("rollout #%(rollout_id)s cannot go from %(from_status)s to "
                                           "%(to_status)s") % {
                                       "rollout_id": rollout_id, "from_status": from_status, "to_status": to_status},
                                   field="status")


def _set_status(rollout_id: int, *, from_statuses, to_status: str, held_by: int | None = None, **fields) -> bool:
    """Compare-and-set through the transition map. False: the row was no longer in one of ``from_statuses``
    (or no longer held by attempt ``held_by``): someone else got there first."""
    for status in from_statuses:
        _check(rollout_id, status, to_status)
    rows = Rollout.objects.filter(pk=rollout_id, status__in=list(from_statuses))
    if held_by is not None:
        rows = rows.filter(attempt=held_by)
    return bool(rows.update(status=to_status, **fields))


def _event(rollout: Rollout) -> None:
    events.send_event_on_commit([events.release_group(rollout.release_id)], "deploy.rollout",
                                {"release_id": rollout.release_id, "rollout_id": rollout.pk,
                                 "status": rollout.status, "attempt": rollout.attempt})


def rollout_log_append(*, rollout_id: int, line: str) -> None:
    """One line of what the target reported, kept on the row (the release page shows its tail)."""
    Rollout.objects.filter(pk=rollout_id).update(log=Concat(F("log"), Value(str(line)[:2000] + "\n")))


# --- create, claim, heartbeat --------------------------------------------------------------------------------


def rollout_create(*, release_id: int) -> Rollout | None:
    """The release went ready -> deploying: create its Rollout and queue the task on commit. Idempotent."""
    with transaction.atomic():
        release = release_lock(release_id)
        if release.environment.deploy_target == DeployTargetKind.NONE:
            return None
        rollout, created = Rollout.objects.get_or_create(release=release)
        if created:
            _event(rollout)
        if rollout.status == RS.PENDING:
            rollout_queue(rollout)
    return rollout


def rollout_queue(rollout: Rollout, *, redrive: bool = False) -> None:
    """Queue the rollout's task on commit and note when, so the sweeper can tell a lost message."""
    fields = {"queued_at": timezone.now()}
    if redrive:
        fields["redrives"] = F("redrives") + 1
    Rollout.objects.filter(pk=rollout.pk).update(**fields)
    enqueue_on_commit("deploy.rollout_run", rollout.release_id)


def rollout_claim(*, release_id: int, task_id: str) -> Rollout | None:
    """Claim a pending rollout, or take over a running one whose worker stopped beating. None: nothing to do
    (someone else holds it, it is finished, or the release is no longer deploying and the row was cancelled)."""
    now = timezone.now()
    stale = now - dt.timedelta(seconds=settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS)
    fields = dict(task_id=task_id[:80], attempt=F("attempt") + 1, started_at=now, heartbeat_at=now,
                  finished_at=None)
    with transaction.atomic():
        release = release_lock(release_id)
        rollout = Rollout.objects.select_for_update().filter(release=release).first()
        if rollout is None or rollout.status in ROLLOUT_TERMINAL:
            return None
        if release.status != ReleaseStatus.DEPLOYING:
            # Rolled back (or moved on) before the rollout started: nothing was made, nothing to remove.
            _set_status(rollout.pk, from_statuses=[rollout.status], to_status=RS.CANCELLED, finished_at=now,
                        reason=f"release is {release.status}; the rollout did not start")
            return None
        if rollout.status == RS.PENDING:
            claimed = _set_status(rollout.pk, from_statuses=[RS.PENDING], to_status=RS.RUNNING, **fields)
        else:
            claimed = bool(Rollout.objects.filter(pk=rollout.pk, status=RS.RUNNING, heartbeat_at__lt=stale)
                           .update(**fields))
            if claimed:
                rollout_log_append(rollout_id=rollout.pk, line="taking over: the previous worker stopped responding")
        if not claimed:
            return None
        rollout.refresh_from_db()
        _event(rollout)
    return rollout


def rollout_takeover_in(*, release_id: int) -> float | None:
    """Seconds until the running rollout of this release may be taken over (its heartbeat goes stale); None when
    it is not running. A redelivered message whose rollout is still held asks again then instead of being
    dropped: the worker that held it may have died a moment ago."""
    row = Rollout.objects.filter(release_id=release_id, status=RS.RUNNING).values_list("heartbeat_at", flat=True)
    heartbeat_at = row.first()
    if heartbeat_at is None:
        return None
    stale_at = heartbeat_at + dt.timedelta(seconds=settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS)
    return max(0.0, (stale_at - timezone.now()).total_seconds())


def rollout_heartbeat(*, rollout_id: int, attempt: int) -> bool:
    return bool(Rollout.objects.filter(pk=rollout_id, status=RS.RUNNING, attempt=attempt)
                .update(heartbeat_at=timezone.now()))


class _Heartbeat:
    """Beats from a thread while the driver works, so a take-over can tell a dead worker from a slow rollout."""

    def __init__(self, rollout: Rollout):
        self.rollout_id, self.attempt = rollout.pk, rollout.attempt
        self.interval = max(0.5, min(15.0, settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS / 4))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-rollout-{rollout.pk}", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    rollout_heartbeat(rollout_id=self.rollout_id, attempt=self.attempt)
                except DatabaseError:
                    log.warning("heartbeat of rollout %s failed", self.rollout_id, exc_info=True)
                    connection.close()  # a broken connection stays broken: the next beat opens a new one
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


# --- run ---------------------------------------------------------------------------------------------------


def rollout_execute(*, release_id: int, task_id: str, log_line=None) -> RolloutResult:
    """Claim, run the driver (no transaction open), record the outcome with the release's. Called by the task."""
    rollout = rollout_claim(release_id=release_id, task_id=task_id)
    if rollout is None:
        return RolloutResult("not_claimed")
    release = Release.objects.select_related("environment", "version").get(pk=release_id)
    kind = release.environment.deploy_target

    def write(line: str, *_level) -> None:
        if log_line is not None:
            log_line(line)
        try:
            rollout_log_append(rollout_id=rollout.pk, line=line)
        except durable.DATABASE_DOWN:  # a database blip must not abort a rollout that is going well
            durable.reconnect()

    write(f"rolling {release.version.tag} out to {release.environment.name} through the '{kind}' target")
    try:
        with _Heartbeat(rollout):
            outcome = driver_for(kind).rollout(release_id=release_id, log=write)
    except TargetError as error:
        write(f"rollout failed: {error}")
        return _finish(rollout, succeeded=False, reason=str(error)[:1000])
    except DatabaseError as error:
        durable.reconnect()
        reason = f"{type(error).__name__}: {error}"
        durable.retry_while_database_is_down(lambda: _set_status(
            rollout.pk, from_statuses=[RS.RUNNING], to_status=RS.PENDING, held_by=rollout.attempt,
            reason=reason[:1000]), what=f"rollout #{rollout.pk} handed back")
        return RolloutResult("retry", reason)
    except Exception as error:  # a driver bug: fail with the reason, never stay running
        log.exception("rollout of release #%s crashed", release_id)
        return _finish(rollout, succeeded=False, reason=f"internal error in the rollout: {type(error).__name__}")
    ok = outcome.status == "deployed"
    reason = "rollout complete" if ok else f"rollout failed: {outcome.rollout.reason}: {outcome.rollout.message}"
    if outcome.status == "rolled_back":
        reason += "; rolled back to the last good revision"
    for note in outcome.notes:
        write(note)
    # The target did its part: a database outage now must not lose that (or turn a success into a failure).
    return durable.retry_while_database_is_down(lambda: _finish(rollout, succeeded=ok, reason=reason[:1000]),
                                                what=f"recording the outcome of rollout #{rollout.pk}")


def _finish(rollout: Rollout, *, succeeded: bool, reason: str) -> RolloutResult:
    """Record the outcome in the rollout and the release in one transaction; if the rollout was cancelled while
    it ran, or failed, remove what it made (outside the transaction)."""
    now = timezone.now()
    with transaction.atomic():
        moved = release_rollout_finished(release_id=rollout.release_id, succeeded=succeeded, reason=reason,
                                         actor_name=ACTOR)  # locks service, release
        locked = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if not moved:
            # The release left deploying while we worked (rolled back): the cancel task may already have
            # cleaned up before our objects existed, so clean up again below.
            _set_status(rollout.pk, from_statuses=[RS.RUNNING], to_status=RS.CANCELLED, held_by=rollout.attempt,
                        finished_at=now, reason="release left deploying while the rollout ran")
        elif not _set_status(rollout.pk, from_statuses=[RS.RUNNING], to_status=RS.SUCCEEDED if succeeded else
                             RS.FAILED, held_by=rollout.attempt, finished_at=now, reason=reason):
            log.info("rollout #%s was taken over or cancelled before it finished (%s)", rollout.pk, locked.status)
        locked.refresh_from_db()
        _event(locked)
    if locked.status == RS.CANCELLED or (locked.status == RS.FAILED and _auto_rollback(locked)):
        _remove_version(locked, why=f"rollout {locked.status}")
    if locked.status in (RS.CANCELLED, RS.FAILED):
        return RolloutResult("cancelled" if locked.status == RS.CANCELLED else "failed", locked.reason)
    return RolloutResult("succeeded" if succeeded else "failed", reason)


def _auto_rollback(rollout: Rollout) -> bool:
    """A failed version is removed unless the environment turned auto-rollback off (left for inspection)."""
    return bool(Release.objects.filter(pk=rollout.release_id).values_list("environment__auto_rollback",
                                                                          flat=True).first())


def _remove_version(rollout: Rollout, *, why: str) -> None:
    release = Release.objects.select_related("environment").get(pk=rollout.release_id)

    def write(line: str, *_level) -> None:
        rollout_log_append(rollout_id=rollout.pk, line=line)

    try:
        driver_for(release.environment.deploy_target).cancel(release_id=release.pk, log=write)
    except TargetError as error:
        write(f"removing what the rollout started failed: {error}")
        with transaction.atomic():
            audit_record(actor=Actor.system(ACTOR), action="deploy.failed", object_type="rollout",
                         object_id=rollout.pk, release=release, to_state=rollout.status,
                         reason=f"{why}: removing its workload failed: {error}"[:1000])


def rollout_mark_failed(*, release_id: int, reason: str) -> bool:
    """Final failure from outside a run (retries exhausted): the rollout and the release fail, nothing stays
    running."""
    rollout = Rollout.objects.filter(release_id=release_id).first()
    if rollout is None or rollout.status in ROLLOUT_TERMINAL:
        return False
    with transaction.atomic():
        release_rollout_finished(release_id=release_id, succeeded=False, reason=reason[:1000], actor_name=ACTOR)
        done = _set_status(rollout.pk, from_statuses=[RS.PENDING, RS.RUNNING], to_status=RS.FAILED,
                           finished_at=timezone.now(), reason=reason[:1000])
    if done and _auto_rollback(rollout):
        rollout.refresh_from_db()
        _remove_version(rollout, why="rollout failed")
    return done


def rollout_cancel(*, release_id: int) -> str:
    """The release was rolled back while deploying: cancel its rollout and remove what it started. The stable is
    untouched and no older release is re-applied. Idempotent: a second delivery finds nothing more to remove."""
    with transaction.atomic():
        release = release_lock(release_id)
        rollout = Rollout.objects.select_for_update().filter(release=release).first()
        if rollout is None:
            return "stale"
        if rollout.status in (RS.PENDING, RS.RUNNING):
            _set_status(rollout.pk, from_statuses=[rollout.status], to_status=RS.CANCELLED,
                        finished_at=timezone.now(), reason=f"release #{release_id} was rolled back while deploying")
            rollout.refresh_from_db()
            _event(rollout)
        elif rollout.status != RS.CANCELLED:
            return "stale"  # finished before the rollback; the rollback's own task moves the traffic
    _remove_version(rollout, why="rollout cancelled")
    return "cancelled"


# --- gray weights: a sequence, applied in order ----------------------------------------------------------


def traffic_change_queue(*, release_id: int, task: str, args: list) -> int | None:
    """Number a traffic change (a gray weight, go live, roll back, cancel) in the order they commit, keep it as the
    newest change for the sweeper, and queue its task on commit with the number as its last argument.
    None: the release has no rollout (nothing on a target to change); the task is queued without a number."""
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().filter(release_id=release_id).first()
        if rollout is None:
            enqueue_on_commit(task, *args)
            return None
        seq = rollout.traffic_seq + 1
        Rollout.objects.filter(pk=rollout.pk).update(
            traffic_seq=seq, traffic_task=task, traffic_args=[*args, seq], traffic_queued_at=timezone.now(),
            traffic_redrives=0)
        enqueue_on_commit(task, *args, seq)
    return seq


def traffic_change_done(*, release_id: int, seq: int | None) -> None:
    """The target has change ``seq`` (or it no longer matters: the release moved on). Never moves backwards."""
    if seq is not None:
        Rollout.objects.filter(release_id=release_id, traffic_applied_seq__lt=seq).update(traffic_applied_seq=seq)


class _TrafficLock:
    """A session-level advisory lock per release around a weight change: two weight tasks never talk to the
    target at once, so the sequence check and the apply cannot interleave. Held with no transaction open."""

    NAMESPACE = 12_0001

    def __init__(self, release_id: int):
        self.release_id = release_id

    def __enter__(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [self.NAMESPACE, self.release_id])
        return self

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [self.NAMESPACE, self.release_id])


def rollout_set_weight(*, release_id: int, weight: int, seq: int | None, log_line) -> str:
    """Apply traffic change number ``seq`` (a weight) unless the target already has that one or a newer one."""
    with _TrafficLock(release_id):
        rollout = Rollout.objects.filter(release_id=release_id).first()
        if seq is not None and rollout is not None and (seq <= rollout.traffic_applied_seq or
                                                        seq < rollout.traffic_seq):
            return "stale"  # an older change arriving late, or a newer one is queued behind it
        release = Release.objects.select_related("environment").get(pk=release_id)
        driver_for(release.environment.deploy_target).set_weight(release_id=release_id, weight=weight,
                                                                  log=log_line)
        traffic_change_done(release_id=release_id, seq=seq)
    return "done"
