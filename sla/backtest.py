"""Policy backtest: replay the evidence stored for past releases of an environment through sla.verdict.evaluate
with a candidate policy, and compare what it would have decided with what happened (reads only).

Evidence: the SLA reports (`SlaReport.readings`: every windowed reading of canary and stable, with its query),
stored at every verdict that changed something and once per evaluation interval, replayed in order per release.
Reports do not keep the raw counters, so the sequential tests (error, latency and floor CUSUMs) cannot be
replayed: the candidate is judged on the window rules, the counts, the resource and LLM quality rules. Its
"when" has the reports' resolution.

Per release: the candidate's first stop (pause, block_version or rollback) and when, against the actual outcome
(sla.dora: rolled back or blocked after reaching traffic = a regression; went live and stayed = healthy) and the
actual first stop verdict. Summary: false stops (candidate stops a release that went live and stayed healthy),
missed regressions (candidate never stops a release that was later rolled back or blocked), and the median change
in time to decision where both stopped.
"""
from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import datetime

from django.utils.translation import gettext_lazy as _

from releases.models import Release
from sla import dora
from sla.catalog import Metric
from sla.findings import GateState, GrayRelease, ReleaseReadings
from sla.models import SlaReport
from sla.policy import SlaPolicy
from sla.prometheus import Reading
from sla.verdict import evaluate

STOPS = frozenset({"pause", "block_version", "rollback"})
SEQUENTIAL_RULES = frozenset({"error_regression_sequential", "latency_regression_sequential",
                              "success_floor_sequential"})
# Said on the backtest's answer and page, not only in the README.
NOT_REPLAYED = _("sequential tests are not replayed: stored reports keep the readings of each window but not "
                 "the raw counters that the error, latency and floor sequential tests (CUSUMs) add up between evaluations, so "
                 "the candidate is judged on the window, count, resource and LLM quality rules only; a stop the gate "
                 "made by a sequential test alone is marked on its row (the candidate may stop later, or never)")
_METRICS = {m.value: m for m in Metric}


def _number(value):
    if isinstance(value, str):  # _json_safe's spelling of non-finite floats
        return {"+Inf": float("inf"), "-Inf": float("-inf")}.get(value)
    return value


def readings_from_json(data: dict, at: datetime) -> ReleaseReadings:
    """A stored report's readings (sla.services._readings_json) back as ReleaseReadings."""
    if data.get("error"):
        return ReleaseReadings(at=at, error=data["error"])
    metrics = {}
    for name, reading in (data.get("metrics") or {}).items():
        metric = _METRICS.get(name)
        if metric is not None and isinstance(reading, dict):
            metrics[metric] = Reading(_number(reading.get("value")), reading.get("query") or "",
                                      reading.get("window_s"), at)
    buckets = tuple((float(_number(le)), float(count)) for le, count in data.get("latency_buckets") or ())
    return ReleaseReadings(at=at, metrics=metrics, latency_buckets=buckets,
                           latency_buckets_query=data.get("latency_buckets_query"))


def _replay(policy: SlaPolicy, release: Release, reports: list) -> tuple[str, datetime | None, str]:
    """The candidate's first stop on these reports: (action, when, its sentence); ("none", None, "") if none."""
    if not reports:
        return "none", None, ""
    start = reports[0].start_ts
    state = GateState(deployed_at=start, phase_started_at=start)
    weight = None
    stable = release.previous_release.version.tag if release.previous_release_id else "stable"
    gray = GrayRelease(release.service.name, release.environment.name, release.version.tag, stable,
                       release_id=release.pk)
    for report in reports:
        if weight is not None and report.gray_weight != weight:
            state = state.entering_phase(report.evaluated_at)
        weight = report.gray_weight
        canary = readings_from_json(report.readings.get("canary") or {}, report.evaluated_at)
        baseline = readings_from_json(report.readings.get("baseline") or {}, report.evaluated_at)
        verdict = evaluate(policy, canary, baseline, state, release=gray)
        if verdict.action in STOPS:
            return verdict.action, report.evaluated_at, verdict.summary
        state = replace(verdict.next_state)
    return "none", None, ""


def _by_sequential_test(report) -> bool:
    """The report's stop came from a sequential test alone (the replay cannot see those)."""
    fired = {f.get("rule") for f in (report.verdict or {}).get("findings") or ()
             if f.get("fired") and f.get("effect") in STOPS}
    return bool(fired) and fired <= SEQUENTIAL_RULES


def backtest(policy: SlaPolicy, releases) -> dict:
    """Rows per release and the summary; `releases` is a queryset of past releases (newest first is fine)."""
    releases = list(releases.select_related("service", "environment", "version", "previous_release__version"))
    facts = {f.release_id: f for f in dora.release_facts(Release.objects.filter(pk__in=[r.pk for r in releases]))}
    by_release: dict[int, list] = {r.pk: [] for r in releases}
    for report in (SlaReport.objects.filter(release_id__in=list(by_release))
                   .only("release_id", "evaluated_at", "start_ts", "gray_weight", "action", "readings", "verdict")
                   .order_by("release_id", "evaluated_at", "id")):
        by_release[report.release_id].append(report)
    rows, changes = [], []
    false_stops = missed = by_sequential = 0
    for release in releases:
        reports = by_release[release.pk]
        if not reports:
            continue  # never judged by the gate: nothing to replay
        fact = facts.get(release.pk)
        regression = bool(fact and fact.failed)
        healthy = bool(fact and fact.live_at) and not regression
        actual = next((r for r in reports if r.action in STOPS), None)
        action, at, why = _replay(policy, release, reports)
        candidate_stops = action != "none"
        false_stop = candidate_stops and healthy
        missed_regression = not candidate_stops and regression
        false_stops += false_stop
        missed += missed_regression
        sequential = actual is not None and _by_sequential_test(actual)
        by_sequential += sequential
        change = (at - actual.evaluated_at).total_seconds() if candidate_stops and actual is not None else None
        if change is not None:
            changes.append(change)
        rows.append({
            "release_id": release.pk, "service": release.service.name, "version": release.version.tag,
            "outcome": "regression" if regression else ("healthy" if healthy else "open"),
            "actual_action": actual.action if actual else "none",
            "actual_at": actual.evaluated_at if actual else None,
            "candidate_action": action, "candidate_at": at, "candidate_summary": why,
            "false_stop": false_stop, "missed_regression": missed_regression, "decision_change_s": change,
            "actual_by_sequential_test": sequential,
        })
    return {"releases": len(rows), "false_stops": false_stops, "missed_regressions": missed,
            "decision_change_median_s": round(statistics.median(changes), 1) if changes else None,
            "actual_stops_by_sequential_tests": by_sequential, "not_replayed": str(NOT_REPLAYED), "rows": rows}


def past_releases(environment: str, *, service: str = "", limit: int = 200):
    qs = Release.objects.filter(environment__name=environment, sla_reports__isnull=False).distinct()
    if service:
        qs = qs.filter(service__name=service)
    ids = list(qs.order_by("-pk").values_list("pk", flat=True)[:limit])
    return Release.objects.filter(pk__in=ids).order_by("pk")
