"""The SLA verdict: a pure function from a policy, readings and the gate's state to a decision.

Statuses and actions (design document, chapter 9):

============  ================  ==========================================================================
status        action            meaning
============  ================  ==========================================================================
verified      ready_to_promote  every advance rule passed for at least one evaluation interval in this phase
watching      hold              not enough evidence yet (low traffic, young phase, a rule not yet met, NODATA,
                                a Prometheus error); neither a pass nor a failure
blocked       pause             gray failed (success rate below the floor): stop ramping, keep the phase
blocked       block_version     too many failed traces: the scheduler stops routing to this version
rollbacked    rollback          cut canary traffic and roll back (the controller executes it, then stores it)
manual_review hold              an operator decides (output channel anomaly, Prometheus down too long)
============  ================  ==========================================================================

When several rules fire, the most severe effect wins (rollback > block_version > pause > manual_review >
hold > ready_to_promote) and every fired rule stays in `reasons`.  The function does no I/O; the gate
(sla.gate) fetches readings and the controller persists `next_state` and, when `snapshot_due`, the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum

from sla.catalog import Metric, ReleaseSelector
from sla.policy import SlaPolicy
from sla.prometheus import Reading
from sla.stats import (
    CounterTotals, CusumState, error_regression_cusum, failure_rate_worse, histogram_mann_whitney,
    success_rate_below,
)


class Effect(Enum):
    # value: (severity, status, action)
    ROLLBACK = (50, "rollbacked", "rollback")
    BLOCK_VERSION = (40, "blocked", "block_version")
    PAUSE = (30, "blocked", "pause")
    MANUAL_REVIEW = (20, "manual_review", "hold")
    WATCH = (10, "watching", "hold")
    PROMOTE = (0, "verified", "ready_to_promote")

    @property
    def severity(self) -> int:
        return self.value[0]

    @property
    def status(self) -> str:
        return self.value[1]

    @property
    def action(self) -> str:
        return self.value[2]


class Outcome(str, Enum):
    EVALUATED = "EVALUATED"
    LOW_TRAFFIC = "LOW_TRAFFIC"
    NODATA = "NODATA"
    PROMETHEUS_ERROR = "PROMETHEUS_ERROR"


_SEQUENTIAL_EFFECT = {"rollback": Effect.ROLLBACK, "pause": Effect.PAUSE, "manual_review": Effect.MANUAL_REVIEW}
_NODATA_EFFECT = {"watching": Effect.WATCH, "manual_review": Effect.MANUAL_REVIEW, "blocked": Effect.PAUSE}


@dataclass(frozen=True)
class GrayRelease:
    service: str
    env: str
    version: str
    baseline_version: str
    agent_group: str | None = None
    release_id: int | str | None = None

    @property
    def canary(self) -> ReleaseSelector:
        return ReleaseSelector(self.service, self.env, self.version)

    @property
    def baseline(self) -> ReleaseSelector:
        return ReleaseSelector(self.service, self.env, self.baseline_version)


@dataclass(frozen=True)
class ReleaseReadings:
    """What Prometheus said about one version at one evaluation time."""

    at: datetime
    metrics: dict = field(default_factory=dict)  # Metric -> Reading
    latency_buckets: tuple = ()  # ((le, count), ...) cumulative, in the window
    latency_buckets_query: str | None = None
    counter_totals: CounterTotals | None = None  # raw counters for the sequential test
    counter_totals_query: str | None = None
    error: str | None = None  # Prometheus trouble: no readings at all

    def reading(self, metric: Metric) -> Reading | None:
        return self.metrics.get(metric)

    def value(self, metric: Metric) -> float | None:
        reading = self.metrics.get(metric)
        return None if reading is None else reading.value

    @property
    def has_traffic_series(self) -> bool:
        return self.reading(Metric.REQUEST_COUNT) is not None


@dataclass(frozen=True)
class GateState:
    """What the gate remembers between evaluations of one release (persisted by the controller)."""

    deployed_at: datetime
    phase_started_at: datetime
    consecutive_prometheus_errors: int = 0
    passing_since: datetime | None = None
    last_snapshot_at: datetime | None = None
    cusum: CusumState = field(default_factory=CusumState)

    def to_dict(self) -> dict:
        def iso(value):
            return None if value is None else value.isoformat()

        return {
            "deployed_at": iso(self.deployed_at),
            "phase_started_at": iso(self.phase_started_at),
            "consecutive_prometheus_errors": self.consecutive_prometheus_errors,
            "passing_since": iso(self.passing_since),
            "last_snapshot_at": iso(self.last_snapshot_at),
            "cusum": self.cusum.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "GateState":
        def parse(value):
            return None if value is None else datetime.fromisoformat(value)

        return cls(
            deployed_at=parse(data["deployed_at"]),
            phase_started_at=parse(data["phase_started_at"]),
            consecutive_prometheus_errors=int(data.get("consecutive_prometheus_errors", 0)),
            passing_since=parse(data.get("passing_since")),
            last_snapshot_at=parse(data.get("last_snapshot_at")),
            cusum=CusumState.from_dict(data.get("cusum")),
        )

    def entering_phase(self, at: datetime) -> "GateState":
        """State for the next gray phase: phase clock restarts; health and the sequential test carry over."""
        return replace(self, phase_started_at=at)


@dataclass(frozen=True)
class Finding:
    """One rule's result, in words, with its numbers and where they came from."""

    rule: str
    effect: Effect | None  # None: the rule passed
    text: str
    measured: float | None = None
    threshold: float | None = None
    query: str | None = None

    def to_dict(self) -> dict:
        return {"rule": self.rule, "fired": self.effect is not None,
                "effect": None if self.effect is None else self.effect.action,
                "text": self.text, "measured": self.measured, "threshold": self.threshold, "query": self.query}


@dataclass(frozen=True)
class Verdict:
    release: GrayRelease
    at: datetime
    outcome: Outcome
    status: str
    action: str
    findings: tuple[Finding, ...]
    healthy: bool
    snapshot_due: bool
    next_state: GateState
    report: dict

    @property
    def reasons(self) -> list[str]:
        """Fired rules first (they decided), then the ones that passed."""
        fired = [f for f in self.findings if f.effect is not None]
        passed = [f for f in self.findings if f.effect is None]
        return [_with_query(f) for f in sorted(fired, key=lambda f: -f.effect.severity) + passed]

    def to_dict(self) -> dict:
        return {
            "release": self.release.__dict__, "at": self.at.isoformat(), "outcome": self.outcome.value,
            "status": self.status, "action": self.action, "healthy": self.healthy,
            "snapshot_due": self.snapshot_due, "reasons": self.reasons,
            "findings": [f.to_dict() for f in self.findings], "report": self.report,
            "next_state": self.next_state.to_dict(),
        }


def _with_query(finding: Finding) -> str:
    return finding.text if not finding.query else f"{finding.text} [query: {finding.query}]"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def _ms(value_s: float | None) -> str:
    return "n/a" if value_s is None else f"{value_s * 1000:.0f} ms"


def snapshot_is_due(policy: SlaPolicy, state: GateState, now: datetime) -> bool:
    """First snapshot at min(first_snapshot_within_s, evaluation_interval_s) after deploy, then every interval."""
    if state.last_snapshot_at is None:
        first = min(policy.first_snapshot_within_s, policy.evaluation_interval_s)
        return (now - state.deployed_at).total_seconds() >= first
    return (now - state.last_snapshot_at).total_seconds() >= policy.evaluation_interval_s


def evaluate(policy: SlaPolicy, canary: ReleaseReadings, baseline: ReleaseReadings, state: GateState, *,
             release: GrayRelease) -> Verdict:
    now = canary.at
    findings: list[Finding] = []

    # -- Prometheus trouble: never a pass, never a rollback -----------------------------------------------------
    error = canary.error or baseline.error
    if error:
        errors = state.consecutive_prometheus_errors + 1
        limit = policy.prometheus_errors_before_manual_review
        effect = Effect.MANUAL_REVIEW if errors >= limit else Effect.WATCH
        findings.append(Finding("prometheus_available", effect,
                                f"Prometheus error {errors} of {limit} in a row before manual review: {error}",
                                measured=errors, threshold=limit))
        next_state = replace(state, consecutive_prometheus_errors=errors, passing_since=None)
        return _verdict(policy, release, now, Outcome.PROMETHEUS_ERROR, findings, state, next_state,
                        canary, baseline, healthy=False)
    state = replace(state, consecutive_prometheus_errors=0)

    # -- NODATA: the policy says what it means -----------------------------------------------------------------
    if not canary.has_traffic_series:
        effect = _NODATA_EFFECT[policy.nodata_status]
        findings.append(Finding("nodata", effect,
                                f"NODATA: no {Metric.REQUEST_COUNT.value} series for {release.version} in the "
                                f"last {policy.evaluation_window_s:g} s; policy treats it as {policy.nodata_status}"))
        next_state = replace(state, passing_since=None)
        return _verdict(policy, release, now, Outcome.NODATA, findings, state, next_state, canary, baseline,
                        healthy=False)

    sequential, cusum = _sequential_findings(policy, canary, baseline, state)
    findings += sequential

    total = canary.value(Metric.REQUEST_COUNT) or 0.0
    failed = canary.value(Metric.FAILED_REQUEST_COUNT) or 0.0
    low_traffic = total < policy.min_sample_size

    findings += _count_findings(policy, canary, baseline)
    if not low_traffic:
        findings += _threshold_findings(policy, canary, baseline, total, failed)

    fired = [f for f in findings if f.effect is not None]
    outcome = Outcome.EVALUATED
    if not fired:
        if low_traffic:
            outcome = Outcome.LOW_TRAFFIC
            findings.append(Finding("min_sample_size", Effect.WATCH,
                                    f"low traffic: {total:.0f} canary requests in {policy.evaluation_window_s:g} s, "
                                    f"at least {policy.min_sample_size} needed before judging",
                                    measured=total, threshold=policy.min_sample_size,
                                    query=canary.reading(Metric.REQUEST_COUNT).query))
        else:
            findings += _advance_findings(policy, canary, baseline, total, failed)

    fired = [f for f in findings if f.effect is not None]
    passing = not fired
    passing_since = (state.passing_since or now) if passing else None
    healthy = passing and (now - passing_since).total_seconds() >= policy.healthy_after_s
    if passing:
        phase_age = (now - state.phase_started_at).total_seconds()
        if phase_age < policy.evaluation_interval_s:
            findings.append(Finding("phase_duration", Effect.WATCH,
                                    f"passing, but the phase has run {phase_age:.0f} s of the "
                                    f"{policy.evaluation_interval_s:g} s evaluation interval",
                                    measured=phase_age, threshold=policy.evaluation_interval_s))
        else:
            findings.append(Finding("phase_duration", None,
                                    f"phase has run {phase_age:.0f} s >= {policy.evaluation_interval_s:g} s"))
    if healthy:
        findings.append(Finding("healthy", None,
                                f"healthy: every rule passed for {(now - passing_since).total_seconds():.0f} s "
                                f">= {policy.healthy_after_s:g} s; allowed into the production main path"))
    next_state = replace(state, passing_since=passing_since, cusum=cusum)
    return _verdict(policy, release, now, outcome, findings, state, next_state, canary, baseline, healthy=healthy)


def _sequential_findings(policy, canary, baseline, state) -> tuple[list[Finding], CusumState]:
    if canary.counter_totals is None or baseline.counter_totals is None:
        return [], state.cusum
    cusum, result = error_regression_cusum(
        state.cusum, canary.counter_totals, baseline.counter_totals,
        factors=policy.sequential_regression_factors, threshold=policy.sequential_log_threshold)
    if not result.alarm:
        return [Finding("error_regression_sequential", None,
                        f"sequential test: log-likelihood ratio {result.statistic:.2f} < {result.threshold:.2f}",
                        measured=result.statistic, threshold=result.threshold, query=canary.counter_totals_query)], cusum
    return [Finding("error_regression_sequential", _SEQUENTIAL_EFFECT[policy.sequential_action],
                    f"canary fails ~{result.factor:g}x as often as the stable version: CUSUM log-likelihood "
                    f"ratio {result.statistic:.2f} >= {result.threshold:.2f} (false alarm <= "
                    f"{policy.sequential_false_alarm_rate:g} per {policy.sequential_horizon_events} failed traces)",
                    measured=result.statistic, threshold=result.threshold, query=canary.counter_totals_query)], cusum


def _count_findings(policy, canary, baseline) -> list[Finding]:
    """Rules on absolute counts: meaningful at any traffic."""
    out = []
    failed = canary.reading(Metric.FAILED_REQUEST_COUNT)
    if failed is not None and failed.value is not None:
        # The count alone would block a healthy canary during a shared downstream outage (the stable version
        # fails just as much), so a baseline with traffic must also be significantly better.
        over = failed.value >= policy.block_failed_traces
        comparison = _failure_comparison(canary, baseline)
        blamed = comparison is None or comparison.significant(policy.stop_significance)
        fired = over and blamed
        text = (f"{failed.value:.0f} failed traces in {policy.evaluation_window_s:g} s "
                f"{'>=' if over else '<'} {policy.block_failed_traces:g}")
        if over and comparison is not None:
            text += (f", canary {'significantly' if blamed else 'not significantly'} worse than the stable version "
                     f"({comparison.describe()})")
        out.append(Finding("failed_traces", Effect.BLOCK_VERSION if fired else None,
                           text + (": version blocked in routing" if fired else ""),
                           measured=failed.value, threshold=policy.block_failed_traces, query=failed.query))
    crashes = canary.reading(Metric.AGENT_CRASH_COUNT)
    if crashes is not None and crashes.value is not None:
        fired = crashes.value >= policy.rollback_crash_count
        out.append(Finding("agent_crashes", Effect.ROLLBACK if fired else None,
                           f"{crashes.value:.0f} agent crashes {'>=' if fired else '<'} {policy.rollback_crash_count:g}",
                           measured=crashes.value, threshold=policy.rollback_crash_count, query=crashes.query))
    peak = canary.reading(Metric.MEMORY_PEAK_BYTES)
    mean = baseline.reading(Metric.MEMORY_MEAN_BYTES)
    if peak is not None and mean is not None and peak.value is not None and mean.value:
        ratio = peak.value / mean.value
        fired = ratio >= policy.rollback_memory_spike_ratio
        out.append(Finding("memory_spike_ratio", Effect.ROLLBACK if fired else None,
                           f"memory spike ratio {ratio:.2f} (canary peak / stable mean) "
                           f"{'>=' if fired else '<'} {policy.rollback_memory_spike_ratio:g}",
                           measured=ratio, threshold=policy.rollback_memory_spike_ratio,
                           query=f"({peak.query}) / ({mean.query})"))
    callbacks = canary.reading(Metric.CALLBACK_COUNT)
    rate = canary.reading(Metric.CALLBACK_FAILURE_RATE)
    if callbacks is not None and rate is not None and rate.value is not None:
        if (callbacks.value or 0) >= policy.min_callback_sample_size:
            fired = rate.value > policy.review_callback_failure_rate
            out.append(Finding("callback_failure_rate", Effect.MANUAL_REVIEW if fired else None,
                               (f"output channel anomaly: callback failure rate {_pct(rate.value)} > "
                                f"{_pct(policy.review_callback_failure_rate)}; check the downstream integration"
                                if fired else
                                f"callback failure rate {_pct(rate.value)} <= {_pct(policy.review_callback_failure_rate)}"),
                               measured=rate.value, threshold=policy.review_callback_failure_rate, query=rate.query))
    return out


def _failure_comparison(canary, baseline):
    base_total = baseline.value(Metric.REQUEST_COUNT)
    total = canary.value(Metric.REQUEST_COUNT)
    if not base_total or not total:
        return None
    return failure_rate_worse(canary.value(Metric.FAILED_REQUEST_COUNT) or 0.0, total,
                              baseline.value(Metric.FAILED_REQUEST_COUNT) or 0.0, base_total)


def _threshold_findings(policy, canary, baseline, total, failed) -> list[Finding]:
    """Failure rules on rates and latency, applied only above the minimum sample size."""
    out = []
    success = canary.reading(Metric.TRACE_SUCCESS_RATE)
    if success is not None and success.value is not None:
        below = success_rate_below(total - failed, total, policy.pause_below_success_rate)
        fired = success.value < policy.pause_below_success_rate and below.significant(policy.stop_significance)
        out.append(Finding("success_rate_floor", Effect.PAUSE if fired else None,
                           (f"gray failed: success rate {_pct(success.value)} < {_pct(policy.pause_below_success_rate)} "
                            f"({below.describe()})" if fired else
                            f"success rate {_pct(success.value)} not below the {_pct(policy.pause_below_success_rate)} "
                            f"floor beyond noise ({below.describe()})"),
                           measured=success.value, threshold=policy.pause_below_success_rate, query=success.query))
    p95 = canary.reading(Metric.TRACE_LATENCY_P95)
    base_p95 = baseline.reading(Metric.TRACE_LATENCY_P95)
    if p95 is not None and base_p95 is not None and p95.value is not None and base_p95.value is not None:
        limit = base_p95.value * (1 + policy.rollback_p95_increase)
        test = _latency_test(canary, baseline)
        fired = p95.value > limit and test is not None and test.significant(policy.stop_significance)
        out.append(Finding("p95_latency_rollback", Effect.ROLLBACK if fired else None,
                           f"p95 {_ms(p95.value)} {'>' if p95.value > limit else '<='} stable {_ms(base_p95.value)} "
                           f"+ {policy.rollback_p95_increase * 100:g} % = {_ms(limit)}"
                           + (f" ({test.describe()})" if test else "")
                           + (": canary traffic cut, roll back" if fired else ""),
                           measured=p95.value, threshold=limit, query=p95.query))
    return out


def _latency_test(canary, baseline):
    if not canary.latency_buckets or not baseline.latency_buckets:
        return None
    try:
        return histogram_mann_whitney(list(canary.latency_buckets), list(baseline.latency_buckets))
    except ValueError:
        return None


def _advance_findings(policy, canary, baseline, total, failed) -> list[Finding]:
    """Advance rules: each must pass; a miss only holds the ramp (watching)."""
    out = []
    success = canary.reading(Metric.TRACE_SUCCESS_RATE)
    value = None if success is None else success.value
    ok = value is not None and value >= policy.advance_min_success_rate
    out.append(Finding("success_rate_advance", None if ok else Effect.WATCH,
                       f"success rate {_pct(value)} {'>=' if ok else '<'} {_pct(policy.advance_min_success_rate)}",
                       measured=value, threshold=policy.advance_min_success_rate,
                       query=None if success is None else success.query))

    base_total = baseline.value(Metric.REQUEST_COUNT)
    base_failed = baseline.value(Metric.FAILED_REQUEST_COUNT) or 0.0
    if base_total:
        test = failure_rate_worse(failed, total, base_failed, base_total)
        worse = test.significant(policy.significance)
        out.append(Finding("failure_rate_vs_baseline", Effect.WATCH if worse else None,
                           f"canary failure rate {_pct(failed / total)} vs stable {_pct(base_failed / base_total)}: "
                           f"{'significantly worse' if worse else 'not significantly worse'} ({test.describe()})",
                           measured=failed / total, threshold=base_failed / base_total,
                           query=canary.reading(Metric.FAILED_REQUEST_COUNT).query
                           if canary.reading(Metric.FAILED_REQUEST_COUNT) else None))
    else:
        out.append(Finding("baseline_traffic", Effect.WATCH,
                           "no stable-version traffic in the window: cannot compare the canary with a baseline"))

    p95 = canary.reading(Metric.TRACE_LATENCY_P95)
    base_p95 = baseline.reading(Metric.TRACE_LATENCY_P95)
    if p95 is None or base_p95 is None or p95.value is None or base_p95.value is None:
        out.append(Finding("p95_latency_advance", Effect.WATCH,
                           f"p95 latency unavailable (canary {_ms(None if p95 is None else p95.value)}, stable "
                           f"{_ms(None if base_p95 is None else base_p95.value)})",
                           query=None if p95 is None else p95.query))
    else:
        limit = base_p95.value * (1 + policy.advance_max_p95_increase)
        ok = p95.value <= limit
        out.append(Finding("p95_latency_advance", None if ok else Effect.WATCH,
                           f"p95 {_ms(p95.value)} {'<=' if ok else '>'} stable {_ms(base_p95.value)} + "
                           f"{policy.advance_max_p95_increase * 100:g} % = {_ms(limit)}",
                           measured=p95.value, threshold=limit, query=p95.query))

    logs = canary.reading(Metric.LOG_ERROR_COUNT)
    log_value = 0.0 if logs is None or logs.value is None else logs.value
    ok = log_value < policy.log_error_threshold
    out.append(Finding("log_errors", None if ok else Effect.WATCH,
                       f"{log_value:.0f} error log lines {'<' if ok else '>='} {policy.log_error_threshold:g}",
                       measured=log_value, threshold=policy.log_error_threshold,
                       query=None if logs is None else logs.query))
    return out


def _verdict(policy, release, now, outcome, findings, state, next_state, canary, baseline, *, healthy) -> Verdict:
    fired = [f.effect for f in findings if f.effect is not None]
    effect = max(fired, key=lambda e: e.severity) if fired else Effect.PROMOTE
    due = snapshot_is_due(policy, state, now) or effect.severity >= Effect.PAUSE.severity
    if due:
        next_state = replace(next_state, last_snapshot_at=now)
    return Verdict(
        release=release, at=now, outcome=outcome, status=effect.status, action=effect.action,
        findings=tuple(findings), healthy=healthy, snapshot_due=due, next_state=next_state,
        report=build_report(release, state, canary, effect),
    )


def build_report(release: GrayRelease, state: GateState, canary: ReleaseReadings, effect: Effect) -> dict:
    """The design document's SLA report shape."""
    total = canary.value(Metric.REQUEST_COUNT)
    failed = canary.value(Metric.FAILED_REQUEST_COUNT)
    p95 = canary.value(Metric.TRACE_LATENCY_P95)
    start = state.deployed_at.astimezone(timezone.utc)
    return {
        "version": release.version,
        "start_ts": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "agent_group": release.agent_group or f"{release.service}-{release.env}",
        "success_rate": _round(canary.value(Metric.TRACE_SUCCESS_RATE)),
        "p95_latency_ms": None if p95 is None else round(p95 * 1000),
        "error_trace_ratio": _round(failed / total) if total and failed is not None else None,
        "callback_fail_rate": _round(canary.value(Metric.CALLBACK_FAILURE_RATE)),
        "status": effect.status,
        "action": effect.action,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
