"""Celery hooks that measure what no single row records (config/celery_app.py connects them).

Breach to stable: when the deploy worker has moved a stopped canary's traffic back to the stable (deploy.roll_back
done, or deploy.rollout_cancel cancelled), observe the time since the stop began: the alert's startsAt when
Alertmanager stopped it (the breach as Prometheus saw it), else the moment the stop was decided (the SLA gate's
verdict, a person's click). Environments without a deploy target move no traffic and are not measured.
"""
from datetime import datetime

from django.utils import timezone

from alerts.models import AlertEvent, AlertOutcome
from releases import metrics
from releases.choices import ReleaseStatus
from releases.models import AuditEvent

TRAFFIC_BACK = {"deploy.roll_back": "done", "deploy.rollout_cancel": "cancelled"}


def _alert_start(release_id: int) -> datetime | None:
    alert = (AlertEvent.objects.filter(release_id=release_id, outcome__in=(AlertOutcome.ROLLED_BACK,))
             .order_by("-id").first())
    if alert is None or not alert.starts_at:
        return None
    try:
        return datetime.fromisoformat(alert.starts_at.replace("Z", "+00:00"))
    except ValueError:
        return None


def traffic_back_on_stable(*, task_name: str, release_id, result) -> float | None:
    """Observe breach-to-stable for a finished deploy task; returns the seconds observed (None: not a stop)."""
    if TRAFFIC_BACK.get(task_name) != result or not isinstance(release_id, int):
        return None
    stop = (AuditEvent.objects.filter(release_id=release_id,
                                      to_state__in=(ReleaseStatus.ROLLED_BACK, ReleaseStatus.BLOCKED))
            .select_related("environment").order_by("-id").first())
    if stop is None or not metrics.first_time(f"breach-to-stable:{stop.pk}"):
        return None  # not a stop, or a redelivered task already measured
    cause = "person" if stop.actor_id is not None else stop.actor_name
    started = stop.created_at
    if cause == "alertmanager":
        started = min(started, _alert_start(release_id) or started)
    seconds = max(0.0, (timezone.now() - started).total_seconds())
    metrics.observe("breach_to_stable_seconds", seconds, environment=stop.environment.name if stop.environment
                    else "", cause=cause)
    return seconds
