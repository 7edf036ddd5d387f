"""Evaluate many gray releases with a fixed number of Prometheus queries.

Releases are grouped by their policy's evaluation window (the window is part of the PromQL); each group costs
one HTTP request per catalog metric (26 today with the LLM quality ones), whatever the number of releases in it, because every query is
aggregated ``by (service, env, version)`` over a selector matching all canaries and their stable baselines.
All queries of one call are evaluated at the same instant, so a verdict never mixes readings from different
moments.  A Prometheus failure turns into readings with ``error`` set for every release of the group, which
`sla.verdict.evaluate` maps to watching (then manual_review after N in a row).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Sequence

from sla.catalog import QUALITY_METRICS, WINDOWED_METRICS, Metric, MetricCatalog, ReleaseSelector
from sla.policy import SlaPolicy
from sla.prometheus import PrometheusClient, PrometheusError
from sla.stats import CounterTotals
from sla.verdict import GateState, GrayRelease, ReleaseReadings, Verdict, evaluate

DEFAULT_CATALOG = MetricCatalog()


def fetch_readings(prom: PrometheusClient, selectors: Sequence[ReleaseSelector], *, window_s: float,
                   at: datetime, catalog: MetricCatalog = DEFAULT_CATALOG,
                   quality_window_s: float | None = None) -> dict[tuple, ReleaseReadings]:
    """Readings for every selector, keyed by (service, env, version). Raises PrometheusError.
    The LLM quality metrics use `quality_window_s` (default: the same window)."""
    window = int(round(window_s))
    quality_window = int(round(quality_window_s)) if quality_window_s else window
    labels = catalog.labels
    queries = {metric: catalog.grouped(metric, selectors, window) for metric in WINDOWED_METRICS
               if metric not in QUALITY_METRICS or quality_window == window}
    for raw in (Metric.REQUEST_COUNTER_TOTALS, Metric.LATENCY_BUCKET_TOTALS):
        queries[raw] = catalog.grouped(raw, selectors, window)
    results = prom.instant_many(queries, window_s=window, at=at)
    if quality_window != window:
        results.update(prom.instant_many({m: catalog.grouped(m, selectors, quality_window) for m in QUALITY_METRICS},
                                         window_s=quality_window, at=at))

    def key_of(sample_labels: dict) -> tuple:
        return tuple(sample_labels.get(name, "") for name in labels.release_key)

    metrics: dict[tuple, dict] = defaultdict(dict)
    buckets: dict[tuple, list] = defaultdict(list)
    bucket_totals: dict[tuple, list] = defaultdict(list)
    totals: dict[tuple, dict] = defaultdict(lambda: {"requests": 0.0, "failures": 0.0})
    for metric, samples in results.items():
        for sample in samples:
            key = key_of(sample.labels)
            if metric is Metric.LATENCY_BUCKETS:
                if sample.reading.value is not None:
                    buckets[key].append((float(sample.labels[labels.bucket_bound]), sample.reading.value))
            elif metric is Metric.LATENCY_BUCKET_TOTALS:
                if sample.reading.value is not None:
                    bucket_totals[key].append((float(sample.labels[labels.bucket_bound]), sample.reading.value))
            elif metric is Metric.REQUEST_COUNTER_TOTALS:
                value = sample.reading.value or 0.0
                totals[key]["requests"] += value
                if sample.labels.get(labels.outcome) == labels.outcome_error:
                    totals[key]["failures"] += value
            else:
                metrics[key][metric] = sample.reading

    readings = {}
    for selector in selectors:
        key = selector.key
        if key in readings:
            continue

        def own(metric: Metric) -> str:  # what a person pastes into Prometheus: this release's series only
            return catalog.for_release(metric, selector, quality_window if metric in QUALITY_METRICS else window)

        readings[key] = ReleaseReadings(
            at=at,
            metrics={metric: replace(reading, query=own(metric)) for metric, reading in metrics.get(key, {}).items()},
            latency_buckets=tuple(sorted(buckets.get(key, []))),
            latency_buckets_query=own(Metric.LATENCY_BUCKETS),
            counter_totals=CounterTotals(**totals[key]) if key in totals else None,
            counter_totals_query=own(Metric.FAILED_REQUEST_COUNT),
            latency_bucket_totals=tuple(sorted(bucket_totals.get(key, []))) or None,
        )
    return readings


@dataclass(frozen=True)
class Evaluation:
    """A verdict with the readings it was computed from (the controller stores canary vs baseline numbers)."""

    verdict: Verdict
    canary: ReleaseReadings
    baseline: ReleaseReadings


def evaluate_batch(prom: PrometheusClient, policy_for: Callable[[GrayRelease], SlaPolicy],
                   releases: Sequence[tuple[GrayRelease, GateState]], *, at: datetime | None = None,
                   catalog: MetricCatalog = DEFAULT_CATALOG) -> list[Evaluation]:
    """One Evaluation per (release, state), in input order."""
    at = at or datetime.now(timezone.utc)
    policies = [policy_for(release) for release, _ in releases]
    by_window: dict[tuple[float, float], list[int]] = defaultdict(list)
    for index, policy in enumerate(policies):
        by_window[(policy.evaluation_window_s, policy.quality_window_s)].append(index)

    out: list[Evaluation | None] = [None] * len(releases)
    for (window_s, quality_window_s), indexes in by_window.items():
        selectors = []
        for i in indexes:
            release = releases[i][0]
            selectors += [release.canary, release.baseline]
        try:
            readings = fetch_readings(prom, selectors, window_s=window_s, at=at, catalog=catalog,
                                      quality_window_s=quality_window_s)
            error = None
        except PrometheusError as exc:
            readings, error = {}, str(exc)
        for i in indexes:
            release, state = releases[i]
            if error:
                canary = baseline = ReleaseReadings(at=at, error=error)
            else:
                canary, baseline = readings[release.canary.key], readings[release.baseline.key]
            out[i] = Evaluation(evaluate(policies[i], canary, baseline, state, release=release), canary, baseline)
    return out


def evaluate_many(prom: PrometheusClient, policy_for: Callable[[GrayRelease], SlaPolicy],
                  releases: Sequence[tuple[GrayRelease, GateState]], *, at: datetime | None = None,
                  catalog: MetricCatalog = DEFAULT_CATALOG) -> list[Verdict]:
    """One verdict per (release, state), in input order."""
    return [e.verdict for e in evaluate_batch(prom, policy_for, releases, at=at, catalog=catalog)]
