"""One run of one stage: claim it, keep it alive with a heartbeat, run its runner, record the outcome.

Called by the Celery task pipelines.run_stage; kept here so the task stays thin and the logic can be read
without Celery in mind.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from pipelines import runners, services
from pipelines.models import LogLevel

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
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _logger(stage, release_id: int):
    def write(message: str, level: str = LogLevel.INFO) -> None:
        services.stage_log_append(stage_id=stage.pk, message=str(message), level=level, release_id=release_id)

    return write


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
        services.stage_succeed(stage_id=stage.pk, attempt=stage.attempt, skipped=str(exc))
        return RunResult("skipped", str(exc))
    except runners.StageBlocked as exc:
        services.stage_block(stage_id=stage.pk, attempt=stage.attempt, reason=str(exc))
        return RunResult("blocked", str(exc))
    except runners.StageNeedsOverride as exc:
        services.stage_wait_for_override(stage_id=stage.pk, attempt=stage.attempt, reason=str(exc))
        return RunResult("waiting", str(exc))
    except runners.StageFailed as exc:
        services.stage_fail(stage_id=stage.pk, attempt=stage.attempt, reason=str(exc))
        return RunResult("failed", str(exc))
    except (runners.TransientStageError, DatabaseError) as exc:
        close_old_connections()
        reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, DatabaseError) else str(exc)
        services.stage_release_for_retry(stage_id=stage.pk, attempt=stage.attempt, reason=reason)
        return RunResult("retry", reason)
    except Exception as exc:  # a bug or an unexpected library error: fail with the reason, never stay running
        log.exception("stage %s (%s) crashed", stage.pk, stage.name)
        reason = f"internal error in the {stage.name} stage: {type(exc).__name__}: {exc}"
        services.stage_fail(stage_id=stage.pk, attempt=stage.attempt, reason=reason)
        return RunResult("failed", reason)
    services.stage_succeed(stage_id=stage.pk, attempt=stage.attempt)
    return RunResult("succeeded")
