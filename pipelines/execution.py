"""One run of one stage: claim it, keep it alive with a heartbeat, run its runner, record the outcome.

Called by the Celery task pipelines.run_stage; kept here so the task stays thin and the logic can be read
without Celery in mind.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection

from pipelines import runners, services
from pipelines.models import LogLevel
from releases import durable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    outcome: str  # "not_claimed", "succeeded", "skipped", "failed", "blocked", "waiting", "retry"
    reason: str = ""


class _Heartbeat:
    """Beats from a thread while the runner works, so a take-over or the reaper can tell a dead worker."""

    def __init__(self, stage_id: int, attempt: int):
        self.stage_id, self.attempt = stage_id, attempt
        self.interval = max(0.5, min(15.0, settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS / 4))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-stage-{stage_id}", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    services.stage_heartbeat(stage_id=self.stage_id, attempt=self.attempt)
                except DatabaseError:
                    log.warning("heartbeat of stage %s failed", self.stage_id, exc_info=True)
                    connection.close()  # a broken connection stays broken: the next beat opens a new one
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _logger(stage, release_id: int):
    """The runner's log(). A line that cannot be written while the database is down is counted, not raised: a
    5-second database restart must not throw away a build that is going well. The count is logged once the
    database answers again."""
    lost = 0

    def write(message: str, level: str = LogLevel.INFO) -> None:
        nonlocal lost
        try:
            if lost:
                services.stage_log_append(stage_id=stage.pk, message=f"{lost} log lines were lost while the database "
                                          f"was unreachable", level=LogLevel.WARNING, release_id=release_id)
                lost = 0
            services.stage_log_append(stage_id=stage.pk, message=str(message), level=level, release_id=release_id)
        except durable.DATABASE_DOWN:
            lost += 1
            durable.reconnect()
            log.warning("stage %s: log line not stored (database unavailable): %s", stage.pk, str(message)[:200])

    return write


def _record(what: str, call):
    """Record an outcome the run already has; rides out a database outage (releases/durable.py)."""
    return durable.retry_while_database_is_down(call, what=what)


def stage_execute(*, stage_id: int, task_id: str) -> RunResult:
    stage = services.stage_claim(stage_id=stage_id, task_id=task_id)
    if stage is None:
        return RunResult("not_claimed")
    release_id = stage.pipeline.release_id
    ctx = runners.StageContext(stage_id=stage.pk, pipeline_id=stage.pipeline_id, release_id=release_id,
                               name=stage.name, attempt=stage.attempt, log=_logger(stage, release_id))
    # No bookkeeping log lines ("started", "finished"): the stage row has its times and the pipeline.stage events
    # announce them; every line costs an INSERT and a live event.
    try:
        with _Heartbeat(stage.pk, stage.attempt):
            runners.runner_for(stage.name)(ctx)
    except runners.StageSkipped as exc:
        reason = str(exc)
        _record(f"stage {stage.pk} skipped", lambda: services.stage_succeed(
            stage_id=stage.pk, attempt=stage.attempt, skipped=reason))
        return RunResult("skipped", reason)
    except runners.StageBlocked as exc:
        reason = str(exc)
        _record(f"stage {stage.pk} blocked", lambda: services.stage_block(
            stage_id=stage.pk, attempt=stage.attempt, reason=reason))
        return RunResult("blocked", reason)
    except runners.StageNeedsOverride as exc:
        reason = str(exc)
        _record(f"stage {stage.pk} waiting", lambda: services.stage_wait_for_override(
            stage_id=stage.pk, attempt=stage.attempt, reason=reason))
        return RunResult("waiting", reason)
    except runners.StageFailed as exc:
        reason = str(exc)
        _record(f"stage {stage.pk} failed", lambda: services.stage_fail(
            stage_id=stage.pk, attempt=stage.attempt, reason=reason))
        return RunResult("failed", reason)
    except (runners.TransientStageError, DatabaseError) as exc:
        durable.reconnect()
        reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, DatabaseError) else str(exc)
        _record(f"stage {stage.pk} handed back", lambda: services.stage_release_for_retry(
            stage_id=stage.pk, attempt=stage.attempt, reason=reason))
        return RunResult("retry", reason)
    except Exception as exc:  # a bug or an unexpected library error: fail with the reason, never stay running
        log.exception("stage %s (%s) crashed", stage.pk, stage.name)
        reason = f"internal error in the {stage.name} stage: {type(exc).__name__}: {exc}"
        _record(f"stage {stage.pk} failed", lambda: services.stage_fail(
            stage_id=stage.pk, attempt=stage.attempt, reason=reason))
        return RunResult("failed", reason)
    _record(f"stage {stage.pk} succeeded", lambda: services.stage_succeed(stage_id=stage.pk, attempt=stage.attempt))
    return RunResult("succeeded")
