"""What `/metrics` says about Rollgate's own work, read at scrape time.

Two sources, so that every process's work shows whatever process answers the scrape:
- the database (the rows are the truth): releases by status, promotions and rollbacks by cause (audit rows, which
  are append-only, so the counts only grow), pipeline stage durations, the oldest work still waiting;
- the Redis store of releases/metrics.py, for what no row records: gate evaluation durations and errors (workers),
  breach-to-stable durations (deploy workers), live sockets (web processes), plus the Celery queue lengths.
"""
import json
import time

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Min, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from deploy.models import Rollout, RolloutStatus
from pipelines.models import Pipeline, PipelineStatus, Stage, StageStatus
from releases import metrics
from releases.models import AuditEvent, Release

STAGE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)
# Which audit rows are promotions and rollbacks; the cause is the system component that acted, or "person".
PROMOTE_ACTIONS = ("release.promote",)
ROLLBACK_ACTIONS = {"release.rollback": None, "release.rollout_failed": "rollout_failed"}


def _cause(actor_id, actor_name: str) -> str:
    return "person" if actor_id is not None else actor_name


def _histogram_from_store(name: str, documentation: str, label_names: list[str]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=label_names)
    for label_key, entry in sorted(metrics.read_histogram(name.removeprefix("rollgate_")).items()):
        labels = json.loads(label_key)
        bounds = sorted(entry["buckets"], key=float)
        family.add_metric([labels.get(n, "") for n in label_names],
                          [(floatToGoString(float(b)), entry["buckets"][b]) for b in bounds] + [("+Inf", entry["count"])], entry["sum"])
    return family


class RollgateCollector:
    def collect(self):
        yield from self._releases()
        yield from self._promotions_and_rollbacks()
        yield from self._pipeline_stages()
        yield from self._waiting_work()
        yield from self._store()

    def _releases(self):
        family = GaugeMetricFamily("rollgate_releases", "Releases by status and environment", labels=[
            "status", "environment"])
        rows = Release.objects.values("status", "environment__name").annotate(n=Count("id")).order_by()
        for row in rows:
            family.add_metric([row["status"], row["environment__name"]], row["n"])
        yield family

    def _promotions_and_rollbacks(self):
        promotions = CounterMetricFamily("rollgate_promotions", "Promotions (each rung up the gray ladder) by "
                                         "environment and cause (person or the system component)",
                                         labels=["environment", "cause"])
        rollbacks = CounterMetricFamily("rollgate_rollbacks", "Rollbacks by environment and cause (person, sla-gate, "
                                        "alertmanager, rollout_failed)", labels=["environment", "cause"])
        rows = (AuditEvent.objects.filter(action__in=(*PROMOTE_ACTIONS, *ROLLBACK_ACTIONS))
                .values("action", "environment__name", "actor_name", "actor_id")
                .annotate(n=Count("id")).order_by())
        promoted, rolled_back = {}, {}
        for row in rows:
            cause = _cause(row["actor_id"], row["actor_name"])
            key_env = row["environment__name"] or ""
            if row["action"] in PROMOTE_ACTIONS:
                promoted[(key_env, cause)] = promoted.get((key_env, cause), 0) + row["n"]
            else:
                cause = ROLLBACK_ACTIONS[row["action"]] or cause
                rolled_back[(key_env, cause)] = rolled_back.get((key_env, cause), 0) + row["n"]
        for (env, cause), n in sorted(promoted.items()):
            promotions.add_metric([env, cause], n)
        for (env, cause), n in sorted(rolled_back.items()):
            rollbacks.add_metric([env, cause], n)
        yield promotions
        yield rollbacks

    def _pipeline_stages(self):
        """Finished stages' durations as a histogram, counted by the database in one query."""
        family = HistogramMetricFamily("rollgate_pipeline_stage_duration_seconds",
                                       "Duration of finished pipeline stages by stage and outcome",
                                       labels=["stage", "status"])
        table = Stage._meta.db_table
        duration = "EXTRACT(EPOCH FROM (finished_at - started_at))" if connection.vendor == "postgresql" else \
            "((julianday(finished_at) - julianday(started_at)) * 86400.0)"
        buckets = ", ".join(f"COUNT(*) FILTER (WHERE {duration} <= {b})" for b in STAGE_BUCKETS)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT name, status, COUNT(*), COALESCE(SUM({duration}), 0), {buckets} FROM {table} "
                           f"WHERE started_at IS NOT NULL AND finished_at IS NOT NULL GROUP BY name, status "
                           f"ORDER BY name, status")
            for name, status, count, total, *counts in cursor.fetchall():
                family.add_metric([name, status], [(floatToGoString(b), c) for b, c in zip(STAGE_BUCKETS, counts)]
                                  + [("+Inf", count)], float(total))
        yield family

    def _waiting_work(self):
        """Queue lag: the age of the oldest work that is waiting for a worker (the rows are the queue), and the
        number of messages in each Celery queue."""
        now = timezone.now()
        lag = GaugeMetricFamily("rollgate_queue_oldest_waiting_seconds",
                                "Age of the oldest work waiting for a worker (0 when none waits): pipelines not "
                                "started, stages queued and not claimed, rollouts not started, traffic changes "
                                "queued and not applied", labels=["work"])
        oldest = {
            "pipeline": Pipeline.objects.filter(status=PipelineStatus.PENDING).aggregate(t=Min("created_at"))["t"],
            "stage": Stage.objects.filter(status=StageStatus.PENDING, queued_at__isnull=False)
            .aggregate(t=Min("queued_at"))["t"],
            "rollout": Rollout.objects.filter(status=RolloutStatus.PENDING)
            .aggregate(t=Min(Coalesce("queued_at", "created_at")))["t"],
            "traffic": Rollout.objects.filter(traffic_applied_seq__lt=F("traffic_seq"), traffic_queued_at__isnull=False)
            .aggregate(t=Min("traffic_queued_at"))["t"],
        }
        for work, at in oldest.items():
            lag.add_metric([work], max(0.0, (now - at).total_seconds()) if at else 0.0)
        redrives = CounterMetricFamily("rollgate_redrives", "Work the sweepers queued again because its message was "
                                       "lost or its worker stopped (issue 13)", labels=["work"])
        redrives.add_metric(["stage"], Stage.objects.aggregate(n=Sum("redrives"))["n"] or 0)
        totals = Rollout.objects.aggregate(rollout=Sum("redrives"), traffic=Sum("traffic_redrives"))
        redrives.add_metric(["rollout"], totals["rollout"] or 0)
        redrives.add_metric(["traffic"], totals["traffic"] or 0)
        yield redrives
        yield lag
        length = GaugeMetricFamily("rollgate_queue_messages", "Messages waiting in each Celery queue (Redis)",
                                   labels=["queue"])
        try:
            client = metrics._client(settings.CELERY_BROKER_URL)
            for queue in settings.ROLLGATE_METRICS_QUEUES:
                length.add_metric([queue], client.llen(queue))
        except redis.RedisError:
            pass  # rollgate_store_up says Redis is down
        yield length

    def _store(self):
        up = GaugeMetricFamily("rollgate_store_up", "1 when the Redis metric store answered this scrape")
        started = time.monotonic()
        try:
            gate = _histogram_from_store("rollgate_gate_evaluation_seconds",
                                         "Duration of one SLA gate evaluation batch (one environment's Prometheus)",
                                         ["environment"])
            errors = CounterMetricFamily("rollgate_gate_evaluation_errors",
                                         "Gate evaluations that could not read Prometheus", labels=["environment"])
            for label_key, value in sorted(metrics.read_counter("gate_evaluation_errors").items()):
                errors.add_metric([json.loads(label_key).get("environment", "")], value)
            breach = _histogram_from_store("rollgate_breach_to_stable_seconds",
                                           "From an automatic stop decision (SLA gate or alert) to all traffic back "
                                           "on the stable version", ["environment", "cause"])
            sockets = GaugeMetricFamily("rollgate_live_sockets", "Open live-update websockets, all web processes")
            sockets.add_metric([], metrics.read_process_gauge("live_sockets"))
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (gate, errors, breach, sockets, up)
        scrape = GaugeMetricFamily("rollgate_metrics_scrape_seconds", "Time this collector spent reading Redis")
        scrape.add_metric([], time.monotonic() - started)
        yield scrape
