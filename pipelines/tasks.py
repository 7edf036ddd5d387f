"""Celery tasks of the pipelines. Thin: they take ids, claim first (pipelines.execution) and call services.

Durable work (issue 13, docs/ARCHITECTURE.md "Durable work"): acks_late, so a worker killed mid-stage leaves its
message unacknowledged. A pool process that dies has its message back at once (reject on worker lost): that
delivery finds the stage still held and asks again when the heartbeat goes stale, then takes it over. A whole
worker that dies leaves the message in Redis until the visibility timeout; the sweeper (pipelines/sweeper.py) does
not wait for it: it re-queues a stage whose heartbeat went stale, and any stage whose message was lost.
"""
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from pipelines import execution, services, sweeper
from releases import durable

log = logging.getLogger(__name__)
DATABASE_DOWN_RETRIES = 10  # about ten minutes with the backoff cap; then the sweeper has it


def _backoff(retries: int) -> float:
    return min(settings.ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS, 2.0 * 2**retries)


@shared_task(name="pipelines.run_stage", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def run_stage(self, stage_id: int, takeover_check: bool = False) -> str:
    try:
        result = execution.stage_execute(stage_id=stage_id, task_id=self.request.id or "")
    except durable.DATABASE_DOWN:
        # The database is away (a restart, a failover): never a reason to fail the stage. Try again later; after
        # a while leave it to the sweeper, which finds the stage from its row once the database is back.
        durable.reconnect()
        log.warning("stage %s: database unavailable; trying again later", stage_id)
        if self.request.retries >= DATABASE_DOWN_RETRIES:
            return "database unavailable"
        raise self.retry(countdown=_backoff(self.request.retries)) from None
    except Exception as exc:  # the claim or the bookkeeping itself failed
        log.exception("stage %s: run failed before its outcome was recorded", stage_id)
        result = execution.RunResult("retry", f"{type(exc).__name__}: {exc}")
    if result.outcome == "not_claimed":
        # Held by another worker, maybe one that died a moment ago (its message came straight back): ask again when
        # its heartbeat goes stale and take the stage over then, instead of dropping the message.
        # One such check per stage at a time, and a check never schedules another: if the holder is alive after
        # all, it finishes the stage; if it dies later, the sweeper takes over.
        wait = None if takeover_check else services.stage_takeover_in(stage_id=stage_id)
        if wait is not None and cache.add(f"pipelines:takeover-check:{stage_id}", 1, timeout=int(wait) + 5):
            run_stage.apply_async(args=[stage_id], kwargs={"takeover_check": True}, countdown=wait + 0.5)
            return "held"
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


@shared_task(name="pipelines.sweep", ignore_result=True)
def sweep() -> dict:
    return sweeper.pipelines_sweep().as_dict()


@shared_task(name="pipelines.prune_stage_logs", ignore_result=True)
def prune_stage_logs() -> int:
    return services.stage_logs_prune()
