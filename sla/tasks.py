"""Celery tasks of the SLA gate. Thin: the work is in sla/services.py.

The beat schedule (config/settings/base.py) runs "sla.evaluate_gray_releases" every SLA_GATE_INTERVAL_SECONDS.
It is idempotent: each evaluation is claimed by compare-and-set on the release's gate record before anything is
stored or done, so a task delivered twice (acks_late after a worker loss, overlapping beats) acts once.
"""
from datetime import datetime, timezone

from celery import shared_task

from sla import services


@shared_task(name="sla.evaluate_gray_releases", acks_late=True, ignore_result=True)
def evaluate_gray_releases(at_ts: float | None = None) -> dict:
    """Evaluate every gray (and paused) release against Prometheus and act on the verdicts.

    `at_ts` (unix seconds) evaluates at a fixed instant instead of now: replays and tests."""
    at = datetime.fromtimestamp(at_ts, timezone.utc) if at_ts is not None else None
    return services.gate_run(at=at).as_dict()


@shared_task(name="sla.prune_history", acks_late=True, ignore_result=True)
def prune_history() -> int:
    return services.history_prune()
