"""Celery tasks of the SLA gate. Thin: the work is in sla/services.py.

The beat schedule (config/settings/base.py) runs "sla.evaluate_gray_releases" every SLA_GATE_INTERVAL_SECONDS.
It is idempotent: each evaluation is claimed by compare-and-set on the release's gate record before anything is
stored or done, so a task delivered twice (acks_late after a worker loss, overlapping beats) acts once.
"""
from datetime import datetime, timezone

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from sla import services

TICK_LOCK = "sla:gate-tick"


@shared_task(name="sla.evaluate_gray_releases", acks_late=True, ignore_result=True)
def evaluate_gray_releases(at_ts: float | None = None) -> dict:
    """Evaluate every gray (and paused) release against Prometheus and act on the verdicts.

    `at_ts` (unix seconds) evaluates at a fixed instant instead of now: replays and tests."""
    at = datetime.fromtimestamp(at_ts, timezone.utc) if at_ts is not None else None
    # Ticks never overlap: a tick that outlives its interval makes the next beat skip rather than evaluate the same
    # releases twice at once. The lock expires on its own if a worker dies mid-tick.
    if not cache.add(TICK_LOCK, "running", timeout=settings.SLA_GATE_INTERVAL_SECONDS * 10):
        return {"evaluated": 0, "applied": [], "skipped": "the previous gate tick is still running"}
    try:
        return services.gate_run(at=at).as_dict()
    finally:
        cache.delete(TICK_LOCK)


@shared_task(name="sla.prune_history", acks_late=True, ignore_result=True)
def prune_history() -> int:
    return services.history_prune()
