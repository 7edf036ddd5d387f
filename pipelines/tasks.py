"""Celery tasks of the pipelines. Thin: they take ids, claim first (pipelines.execution) and call services.

acks_late: a worker killed mid-stage leaves its message unacknowledged; Redis redelivers it after the visibility
timeout and the new delivery takes the stage over once its heartbeat is stale (or the reaper fails it first).
"""
import logging

from celery import shared_task
from django.conf import settings

from pipelines import execution, services

log = logging.getLogger(__name__)


def _backoff(retries: int) -> float:
    return min(settings.ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS, 2.0 * 2**retries)


@shared_task(name="pipelines.run_stage", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def run_stage(self, stage_id: int) -> str:
    try:
        result = execution.stage_execute(stage_id=stage_id, task_id=self.request.id or "")
    except Exception as exc:  # the claim or the bookkeeping itself failed (database gone?)
        log.exception("stage %s: run failed before its outcome was recorded", stage_id)
        result = execution.RunResult("retry", f"{type(exc).__name__}: {exc}")
    if result.outcome != "retry":
        return result.outcome
    if self.request.retries >= settings.ROLLGATE_PIPELINE_TRANSIENT_RETRIES:
        services.stage_mark_failed(stage_id=stage_id, reason=f"gave up after {self.request.retries + 1} attempts; "
                                                             f"last error: {result.reason}")
        return "failed"
    raise self.retry(countdown=_backoff(self.request.retries))


@shared_task(name="pipelines.notify_stage_failure", acks_late=True, ignore_result=True)
def notify_stage_failure(stage_id: int) -> int:
    return len(services.stage_failure_notify(stage_id=stage_id))


@shared_task(name="pipelines.reap_stale_stages", ignore_result=True)
def reap_stale_stages() -> int:
    return services.stages_reap_stale()


@shared_task(name="pipelines.prune_stage_logs", ignore_result=True)
def prune_stage_logs() -> int:
    return services.stage_logs_prune()
