"""The gate's rules: readings in, findings out (each with its numbers, threshold, test and per-release query).

Which finding wins, and what the gate remembers, is decided in sla.verdict; this module only measures.
Every rule here is listed in the precedence table of sla/verdict.py and the README's SLA section.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sla import explain
from sla.catalog import Metric
from sla.findings import Effect, Finding, GateState, GrayRelease, ReleaseReadings
from sla.policy import SlaPolicy
from sla.stats import (
    error_regression_cusum, failure_rate_worse, floor_breach_cusum, histogram_mann_whitney,
    latency_regression_cusum, required_sample, success_rate_below, survival,
)
from sla.stats import quantile as bucket_quantile

_SEQUENTIAL_EFFECT = {"rollback": Effect.ROLLBACK, "pause": Effect.PAUSE, "manual_review": Effect.MANUAL_REVIEW}
NODATA_EFFECT = {"watching": Effect.WATCH, "manual_review": Effect.MANUAL_REVIEW, "blocked": Effect.PAUSE}


def _failed_clause(release: GrayRelease, canary: ReleaseReadings, baseline: ReleaseReadings) -> str:
    """'v1.2.0 failed 4.60 % of 67 traces against 0.07 % on v1.1.0' over the window."""
    total = canary.value(Metric.REQUEST_COUNT) or 0.0
    failed = canary.value(Metric.FAILED_REQUEST_COUNT) or 0.0
    base_total = baseline.value(Metric.REQUEST_COUNT) or 0.0
    base_failed = baseline.value(Metric.FAILED_REQUEST_COUNT) or 0.0
    text = f"{release.version} failed {explain.pct(failed / total if total else None)} of {explain.count(total)} traces"
    if base_total:
        text += f" against {explain.pct(base_failed / base_total)} on {release.baseline_version}"
    return text


# --- sequential tests: decide within seconds, at any traffic, with a bounded false-alarm rate -----------------


def error_regression(policy: SlaPolicy, release, canary, baseline, state: GateState):
    if canary.counter_totals is None or baseline.counter_totals is None:
        return [], state.cusum
    cusum, result = error_regression_cusum(
        state.cusum, canary.counter_totals, baseline.counter_totals,
        factors=policy.sequential_regression_factors, threshold=policy.sequential_log_threshold)
    query = canary.query(Metric.FAILED_REQUEST_COUNT)
    bound = (f"false alarm <= {policy.sequential_false_alarm_rate:g} per {policy.sequential_horizon_events:,} "
             f"failed traces")
    if not result.alarm:
        return [Finding("error_regression_sequential", None,
                        f"error rate not worse than {release.baseline_version}'s: sequential log-likelihood ratio "
                        f"{result.statistic:.2f} < {result.threshold:.2f} ({bound})",
                        measured=result.statistic, threshold=result.threshold, query=query)], cusum
    clause = _failed_clause(release, canary, baseline)
    return [Finding("error_regression_sequential", _SEQUENTIAL_EFFECT[policy.sequential_action],
                    f"error-rate regression: {clause}; sequential log-likelihood ratio {result.statistic:.2f} >= "
                    f"{result.threshold:.2f} ({bound})",
                    measured=result.statistic, threshold=result.threshold, query=query, headline=clause)], cusum


def latency_regression(policy: SlaPolicy, release, canary, baseline, state: GateState):
    if not canary.latency_bucket_totals or not baseline.latency_bucket_totals or not baseline.latency_buckets:
        return [], state.latency_cusum
    latency, result = latency_regression_cusum(
        state.latency_cusum, canary.latency_bucket_totals, baseline.latency_bucket_totals,
        list(baseline.latency_buckets), advance_increase=policy.advance_max_p95_increase,
        rollback_increase=policy.rollback_p95_increase, threshold=policy.latency_log_threshold)
    if result.limit_s is None:
        return [], latency
    query = canary.query(Metric.TRACE_LATENCY_P95)  # one series when pasted (the buckets query has one per le)
    share = (f"{explain.pct(result.canary_slow / result.canary_n)} of the canary's latest traces"
             if result.canary_n else "no new canary traces")
    base = (f"{explain.pct(result.baseline_slow / result.baseline_n)} of the stable's" if result.baseline_n else "")
    detail = (f"{share} were slower than {release.baseline_version}'s p95 ({explain.ms(result.limit_s * 1000)})"
              + (f" against {base}" if base else ""))
    if not result.alarm:
        return [Finding("latency_regression_sequential", None,
                        f"latency: {detail}; sequential log-likelihood ratio {result.statistic:.2f} < "
                        f"{result.threshold:.2f} (H1: p95 + {policy.rollback_p95_increase * 100:g} %)",
                        measured=result.statistic, threshold=result.threshold, query=query)], latency
    headline = f"{release.version} got slower: {detail}"
    return [Finding("latency_regression_sequential", Effect.ROLLBACK,
                    f"latency regression of the rollback size (p95 + {policy.rollback_p95_increase * 100:g} %): "
                    f"{detail}; sequential log-likelihood ratio {result.statistic:.2f} >= {result.threshold:.2f}",
                    measured=result.statistic, threshold=result.threshold, query=query, headline=headline)], latency


def floor_breach(policy: SlaPolicy, release, canary, state: GateState):
    if canary.counter_totals is None:
        return [], state.floor_cusum
    floor, result = floor_breach_cusum(state.floor_cusum, canary.counter_totals,
                                       floor=policy.pause_below_success_rate,
                                       factors=policy.floor_sequential_factors,
                                       threshold=policy.floor_log_threshold)
    query = canary.query(Metric.TRACE_SUCCESS_RATE)
    floor_text = explain.pct(policy.pause_below_success_rate)
    if not result.alarm:
        return [Finding("success_floor_sequential", None,
                        f"success rate not below the {floor_text} floor: sequential log-likelihood ratio "
                        f"{result.statistic:.2f} < {result.threshold:.2f}",
                        measured=result.statistic, threshold=result.threshold, query=query)], floor
    success = canary.value(Metric.TRACE_SUCCESS_RATE)
    headline = f"{release.version} succeeded on {explain.pct(success)} of traces, below the {floor_text} floor"
    return [Finding("success_floor_sequential", Effect.PAUSE,
                    f"gray failed: {headline} (sequential log-likelihood ratio {result.statistic:.2f} >= "
                    f"{result.threshold:.2f})",
                    measured=result.statistic, threshold=result.threshold, query=query, headline=headline)], floor


# --- rules on counts: meaningful at any traffic -------------------------------------------------------------


def failed_traces(policy: SlaPolicy, release: GrayRelease, canary, baseline, state: GateState) -> list[Finding]:
    """>= N failed traces and worse than stable -> block_version.  While the ramp is moving the count is the
    window's; once the release is paused it counts the failures since the pause (escalation)."""
    failed = canary.reading(Metric.FAILED_REQUEST_COUNT)
    if failed is None or failed.value is None:
        return []
    limit = policy.block_failed_traces
    comparison = _failure_comparison(canary, baseline)
    blamed = comparison is None or comparison.significant(policy.stop_significance)
    if release.paused and state.pause_mark_failures is not None and canary.counter_totals is not None:
        count = max(0.0, canary.counter_totals.failures - state.pause_mark_failures)
        over = count >= limit
        text = f"{explain.count(count)} failed traces since the ramp was paused {'>=' if over else '<'} {limit:g}"
    else:
        count = failed.value
        over = count >= limit
        text = (f"{explain.count(count)} failed traces in {policy.evaluation_window_s:g} s "
                f"{'>=' if over else '<'} {limit:g}")
    fired = over and blamed
    if over and comparison is not None:
        text += (f", canary {'significantly' if blamed else 'not significantly'} worse than "
                 f"{release.baseline_version} ({comparison.describe()})")
    return [Finding("failed_traces", Effect.BLOCK_VERSION if fired else None,
                    text + (": version blocked in routing" if fired else ""), measured=count, threshold=limit,
                    query=failed.query, unit=explain.COUNT,
                    headline=f"{_failed_clause(release, canary, baseline)}, {explain.count(count)} failed traces"
                    if fired else None)]


def resource_rules(policy: SlaPolicy, release: GrayRelease, canary, baseline) -> list[Finding]:
    out = []
    crashes = canary.reading(Metric.AGENT_CRASH_COUNT)
    if crashes is not None and crashes.value is not None:
        fired = crashes.value >= policy.rollback_crash_count
        out.append(Finding("agent_crashes", Effect.ROLLBACK if fired else None,
                           f"{explain.count(crashes.value)} agent crashes {'>=' if fired else '<'} "
                           f"{policy.rollback_crash_count:g}",
                           measured=crashes.value, threshold=policy.rollback_crash_count, query=crashes.query,
                           unit=explain.COUNT,
                           headline=f"{release.version} crashed {explain.count(crashes.value)} times" if fired else None))
    peak = canary.reading(Metric.MEMORY_PEAK_BYTES)
    mean = baseline.reading(Metric.MEMORY_MEAN_BYTES)
    if peak is not None and mean is not None and peak.value is not None and mean.value:
        ratio = peak.value / mean.value
        fired = ratio >= policy.rollback_memory_spike_ratio
        out.append(Finding("memory_spike_ratio", Effect.ROLLBACK if fired else None,
                           f"memory spike ratio {ratio:.2f} (canary peak {peak.value / 1e6:,.0f} MB / stable mean "
                           f"{mean.value / 1e6:,.0f} MB) {'>=' if fired else '<'} {policy.rollback_memory_spike_ratio:g}",
                           measured=ratio, threshold=policy.rollback_memory_spike_ratio, query=peak.query,
                           headline=(f"{release.version} peaked at {ratio:.1f}x {release.baseline_version}'s memory"
                                     if fired else None)))
    callbacks = canary.reading(Metric.CALLBACK_COUNT)
    rate = canary.reading(Metric.CALLBACK_FAILURE_RATE)
    if callbacks is not None and rate is not None and rate.value is not None:
        if (callbacks.value or 0) >= policy.min_callback_sample_size:
            out.append(_callback_finding(policy, release, callbacks.value, rate))
    return out


def _callback_finding(policy: SlaPolicy, release: GrayRelease, count: float, rate) -> Finding:
    """Callback failures above the limit ask for a person, once there is evidence of it: one failed callback
    among the first 40 is 2.5 %, but a channel failing 2 % of the time shows that as often as not.  The exact
    binomial test (failures above the limit at stop_significance, like the success floor) decides; an
    observed rate above the limit without that evidence holds the ramp (watching) until the evidence is in."""
    limit = explain.pct(policy.review_callback_failure_rate)
    failed = round(rate.value * count)
    above = success_rate_below(count - failed, count, 1 - policy.review_callback_failure_rate)
    over = rate.value > policy.review_callback_failure_rate
    fired = over and above.significant(policy.stop_significance)
    counted = f"{explain.count(failed)} of {explain.count(count)} callbacks failed ({explain.pct(rate.value)})"
    if fired:
        text = f"output channel anomaly: {counted} > {limit} ({above.describe()}); check the downstream integration"
    elif over:
        text = (f"{counted}: above {limit}, but too few to tell from noise ({above.describe()}; "
                f"{policy.stop_significance:g} needed for a manual review); the ramp does not advance meanwhile")
    else:
        text = f"callback failure rate {explain.pct(rate.value)} of {explain.count(count)} <= {limit}"
    return Finding("callback_failure_rate", Effect.MANUAL_REVIEW if fired else (Effect.WATCH if over else None),
                   text, measured=rate.value, threshold=policy.review_callback_failure_rate, query=rate.query,
                   unit=explain.RATIO,
                   headline=(f"{release.version}'s callbacks failed {explain.pct(rate.value)} of "
                             f"{explain.count(count)} times (limit {limit})" if fired else None))


def _failure_comparison(canary, baseline):
    base_total = baseline.value(Metric.REQUEST_COUNT)
    total = canary.value(Metric.REQUEST_COUNT)
    if not base_total or not total:
        return None
    return failure_rate_worse(canary.value(Metric.FAILED_REQUEST_COUNT) or 0.0, total,
                              baseline.value(Metric.FAILED_REQUEST_COUNT) or 0.0, base_total)


# --- window rules on rates and latency (above the minimum sample size) --------------------------------------


def window_rules(policy: SlaPolicy, release: GrayRelease, canary, baseline, total, failed) -> list[Finding]:
    out = []
    success = canary.reading(Metric.TRACE_SUCCESS_RATE)
    floor = explain.pct(policy.pause_below_success_rate)
    if success is not None and success.value is not None:
        below = success_rate_below(total - failed, total, policy.pause_below_success_rate)
        fired = success.value < policy.pause_below_success_rate and below.significant(policy.stop_significance)
        if fired:
            text = f"gray failed: success rate {explain.pct(success.value)} < {floor} ({below.describe()})"
        elif success.value < policy.pause_below_success_rate:
            text = (f"success rate {explain.pct(success.value)} is below the {floor} floor, but "
                    f"{explain.count(total)} traces are too few to tell it from noise ({below.describe()}; "
                    f"{policy.stop_significance:g} needed to pause); the ramp does not advance meanwhile")
        else:
            text = f"success rate {explain.pct(success.value)} >= the {floor} floor"
        out.append(Finding("success_rate_floor", Effect.PAUSE if fired else None, text,
                           measured=success.value, threshold=policy.pause_below_success_rate, query=success.query,
                           unit=explain.RATIO,
                           headline=(f"{release.version} succeeded on {explain.pct(success.value)} of "
                                     f"{explain.count(total)} traces, below the {floor} floor" if fired else None)))
    p95 = canary.reading(Metric.TRACE_LATENCY_P95)
    base_p95 = baseline.reading(Metric.TRACE_LATENCY_P95)
    if p95 is not None and base_p95 is not None and p95.value is not None and base_p95.value is not None:
        limit = base_p95.value * (1 + policy.rollback_p95_increase)
        test = _latency_test(canary, baseline)
        fired = p95.value > limit and test is not None and test.significant(policy.stop_significance)
        comparison = (f"p95 {explain.ms(p95.value * 1000)} {'>' if p95.value > limit else '<='} "
                      f"{release.baseline_version}'s {explain.ms(base_p95.value * 1000)} + "
                      f"{policy.rollback_p95_increase * 100:g} % = {explain.ms(limit * 1000)}")
        out.append(Finding("p95_latency_rollback", Effect.ROLLBACK if fired else None,
                           comparison + (f" ({test.describe()})" if test else "")
                           + (": canary traffic cut, roll back" if fired else ""),
                           measured=p95.value * 1000, threshold=limit * 1000, query=p95.query, unit=explain.MS,
                           headline=f"{release.version}'s {comparison}" if fired else None))
    return out


def _latency_test(canary, baseline):
    if not canary.latency_buckets or not baseline.latency_buckets:
        return None
    try:
        return histogram_mann_whitney(list(canary.latency_buckets), list(baseline.latency_buckets))
    except ValueError:
        return None


# --- completeness: a window with a hole is not judged as complete --------------------------------------------


def completeness(policy: SlaPolicy, canary, baseline, state: GateState, now: datetime) -> list[Finding]:
    out = []
    gaps = [r.value(Metric.SCRAPE_GAP) for r in (canary, baseline)]
    gaps = [g for g in gaps if g is not None]
    if gaps:
        gap = max(gaps)
        ok = gap <= policy.max_scrape_gap_s
        out.append(Finding("scrape_gap", None if ok else Effect.WATCH,
                           (f"scrapes complete: the longest hole in the window is {explain.seconds(gap)} "
                            f"<= {policy.max_scrape_gap_s:g} s" if ok else
                            f"the window has a {explain.seconds(gap)} hole in the scrapes (at most "
                            f"{policy.max_scrape_gap_s:g} s allowed): not judged as complete, no promotion until "
                            f"the hole leaves the {policy.evaluation_window_s:g} s window"),
                           measured=gap, threshold=policy.max_scrape_gap_s, query=canary.query(Metric.SCRAPE_GAP),
                           unit=explain.SECONDS))
    if state.fresh_from is not None:
        fresh_for = (now - state.fresh_from).total_seconds()
        if fresh_for < policy.evaluation_window_s:
            left = policy.evaluation_window_s - fresh_for
            out.append(Finding("fresh_window", Effect.WATCH,
                               f"Prometheus answered again at {explain.clock(state.fresh_from)} after an outage: "
                               f"waiting for a full fresh {policy.evaluation_window_s:g} s window ({explain.duration(left)}"
                               f" more) before promoting",
                               measured=fresh_for, threshold=policy.evaluation_window_s, unit=explain.SECONDS))
    return out


# --- advancing: every rule must pass; a miss only holds the ramp ---------------------------------------------


@dataclass(frozen=True)
class PhaseSample:
    """The canary's traces since the phase began (raw counter differences)."""

    requests: float
    failures: float
    rate_per_s: float  # current canary traffic: since the phase began, or over the window early in a phase


PHASE_RATE_AFTER_S = 15.0  # a phase this old has its own traffic rate; younger ones use the window's


def phase_sample(state: GateState, canary: ReleaseReadings, window_s: float,
                 now: datetime | None = None) -> PhaseSample:
    totals, mark = canary.counter_totals, state.phase_mark
    requests = failures = 0.0
    if totals is not None and mark is not None and totals.requests >= mark.requests:
        requests = totals.requests - mark.requests
        failures = max(0.0, totals.failures - mark.failures)
    rate = (canary.value(Metric.REQUEST_COUNT) or 0.0) / window_s
    # The window still holds traffic from before the phase (a smaller weight, or no canary yet), which makes
    # "about N minutes at the current rate" far too long right after a promotion: the phase's own rate is the
    # canary's traffic at this weight.
    if now is not None and state.phase_mark_at is not None and requests > 0:
        age = (now - state.phase_mark_at).total_seconds()
        if age >= PHASE_RATE_AFTER_S:
            rate = requests / age
    return PhaseSample(requests, failures, rate)


def power_rule(policy: SlaPolicy, release: GrayRelease, baseline, sample: PhaseSample) -> Finding:
    """Promote only when the sample since the phase began could have shown (at `significance`, with `power`)
    a drop below the floor given the stable's error rate, and a p95 increase of the advance margin."""
    base_total = baseline.value(Metric.REQUEST_COUNT) or 0.0
    base_failed = baseline.value(Metric.FAILED_REQUEST_COUNT) or 0.0
    needs = []
    # 1. errors: H0 canary fails like stable (p_s, smoothed so that a clean stable is not "exactly 0"),
    #    H1 canary fails at 1 - floor.
    p_s = (base_failed + 0.5) / (base_total + 1)
    p_floor = 1 - policy.pause_below_success_rate
    n_errors = required_sample(p_s=p_s, p_1=p_floor, n_s=base_total, alpha=policy.significance, power=policy.power)
    if n_errors is None:
        stable_rate = explain.pct(base_failed / base_total if base_total else None)
        floor = explain.pct(policy.pause_below_success_rate)
        why = (f"{release.baseline_version} itself fails {stable_rate} of {explain.count(base_total)} traces, at or "
               f"below the {floor} floor: a canary drop below the floor cannot be told apart from the stable"
               if p_s >= p_floor else
               f"{release.baseline_version}'s sample ({explain.count(base_total)} traces, {stable_rate} failed) is "
               f"too small to tell a canary drop below the {floor} floor from its own rate: needs more stable traffic")
        return Finding("evidence_power", Effect.WATCH, f"not enough evidence: {why}",
                       measured=sample.requests, unit=explain.COUNT,
                       headline=f"{release.version} cannot yet be compared with {release.baseline_version}")
    needs.append((n_errors, f"a drop below the {explain.pct(policy.pause_below_success_rate)} floor"))
    # 2. latency: H0 the canary exceeds the stable's p95 as often as the stable (5 %); H1 it is slower by the
    #    advance margin, so it exceeds it as often as the stable exceeds p95 / (1 + margin).
    buckets = list(baseline.latency_buckets)
    p95 = bucket_quantile(buckets, 0.95) if buckets else None
    base_latency_n = max((c for _, c in buckets), default=0.0)
    n_latency = None
    if p95:
        p0 = survival(buckets, p95)
        p1 = survival(buckets, p95 / (1 + policy.advance_max_p95_increase))
        n_latency = required_sample(p_s=p0, p_1=p1, n_s=base_latency_n, alpha=policy.significance,
                                    power=policy.power)
    if n_latency is None:
        # Never skip a guard silently: a regression the sample could not show is no evidence of its absence.
        why = (f"{release.baseline_version}'s latency histogram ({explain.count(base_latency_n)} traces in the "
               f"window) cannot show a {policy.advance_max_p95_increase * 100:g} % p95 increase at "
               f"{policy.significance:g} with {policy.power * 100:g} % power: too few stable traces or buckets too "
               f"coarse around its p95; needs more stable traffic (or a wider advance_max_p95_increase)")
        return Finding("evidence_power", Effect.WATCH, f"not enough evidence: {why}",
                       measured=sample.requests, unit=explain.COUNT,
                       headline=f"{release.version} cannot yet be compared with {release.baseline_version}'s latency")
    needs.append((n_latency, f"a p95 increase of {policy.advance_max_p95_increase * 100:g} %"))
    required, guards = max(needs, key=lambda n: n[0])
    have = sample.requests
    what = " and ".join(g for _, g in needs)
    formula = (f"two-sample one-sided test at {policy.significance:g} with {policy.power * 100:g} % power "
               f"against {what}")
    if have >= required:
        return Finding("evidence_power", None,
                       f"enough evidence: {explain.count(have)} canary traces since the phase began >= "
                       f"{explain.count(required)} needed ({formula})",
                       measured=have, threshold=required, unit=explain.COUNT)
    more = required - have
    eta = more / sample.rate_per_s if sample.rate_per_s > 0 else math.inf
    sentence = (f"needs about {explain.count(more)} more requests ({explain.duration(eta)} at the current rate)")
    return Finding("evidence_power", Effect.WATCH,
                   f"not enough evidence yet: {explain.count(have)} canary traces since the phase began, "
                   f"{explain.count(required)} needed to detect {guards} ({formula}); {sentence}",
                   measured=have, threshold=required, unit=explain.COUNT,
                   headline=f"{release.version} {sentence}")


def advance_rules(policy: SlaPolicy, release: GrayRelease, canary, baseline, total, failed) -> list[Finding]:
    out = []
    success = canary.reading(Metric.TRACE_SUCCESS_RATE)
    value = None if success is None else success.value
    ok = value is not None and value >= policy.advance_min_success_rate
    out.append(Finding("success_rate_advance", None if ok else Effect.WATCH,
                       f"success rate {explain.pct(value)} {'>=' if ok else '<'} "
                       f"{explain.pct(policy.advance_min_success_rate)} needed to advance",
                       measured=value, threshold=policy.advance_min_success_rate,
                       query=None if success is None else success.query, unit=explain.RATIO))

    base_total = baseline.value(Metric.REQUEST_COUNT)
    base_failed = baseline.value(Metric.FAILED_REQUEST_COUNT) or 0.0
    if base_total and total:
        test = failure_rate_worse(failed, total, base_failed, base_total)
        worse = test.significant(policy.significance)
        out.append(Finding("failure_rate_vs_baseline", Effect.WATCH if worse else None,
                           f"{_failed_clause(release, canary, baseline)}: "
                           f"{'significantly worse' if worse else 'not significantly worse'} ({test.describe()})",
                           measured=failed / total, threshold=base_failed / base_total,
                           query=canary.query(Metric.FAILED_REQUEST_COUNT), unit=explain.RATIO))
    elif not base_total:
        out.append(Finding("baseline_traffic", Effect.WATCH,
                           f"no traffic on the stable version {release.baseline_version} in the window: cannot "
                           f"compare the canary with a baseline"))

    p95 = canary.reading(Metric.TRACE_LATENCY_P95)
    base_p95 = baseline.reading(Metric.TRACE_LATENCY_P95)
    if p95 is None or base_p95 is None or p95.value is None or base_p95.value is None:
        out.append(Finding("p95_latency_advance", Effect.WATCH,
                           f"p95 latency unavailable (canary {explain.ms(None if p95 is None or p95.value is None else p95.value * 1000)}, "
                           f"stable {explain.ms(None if base_p95 is None or base_p95.value is None else base_p95.value * 1000)})",
                           query=None if p95 is None else p95.query))
    else:
        limit = base_p95.value * (1 + policy.advance_max_p95_increase)
        ok = p95.value <= limit
        out.append(Finding("p95_latency_advance", None if ok else Effect.WATCH,
                           f"p95 {explain.ms(p95.value * 1000)} {'<=' if ok else '>'} {release.baseline_version}'s "
                           f"{explain.ms(base_p95.value * 1000)} + {policy.advance_max_p95_increase * 100:g} % = "
                           f"{explain.ms(limit * 1000)}",
                           measured=p95.value * 1000, threshold=limit * 1000, query=p95.query, unit=explain.MS))

    logs = canary.reading(Metric.LOG_ERROR_COUNT)
    log_value = 0.0 if logs is None or logs.value is None else logs.value
    ok = log_value < policy.log_error_threshold
    out.append(Finding("log_errors", None if ok else Effect.WATCH,
                       f"{explain.count(log_value)} error log lines {'<' if ok else '>='} {policy.log_error_threshold:g}",
                       measured=log_value, threshold=policy.log_error_threshold,
                       query=None if logs is None else logs.query, unit=explain.COUNT))
    return out

