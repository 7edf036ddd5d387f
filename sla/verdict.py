"""The SLA verdict: a pure function from a policy, readings and the gate's state to a decision.

This is the one place that decides.  The rules (sla.rules) measure; `evaluate` below collects their findings
and the most severe effect wins.  Precedence (design document, chapter 9; also in the README and on the policy
page), most severe first:

==============  ================  ===============================================================================
status          action            fired by
==============  ================  ===============================================================================
rollbacked      rollback          p95 > stable p95 + 20 % (window test, or the sequential latency test within
                                  seconds); >= 3 agent crashes; peak memory >= 2x the stable mean;
                                  an error-rate regression when the policy says ``sequential_action: rollback``;
                                  LLM quality: tool error rate >= 5 points above stable and significantly higher
                                  (``tool_error_regression``)
blocked         block_version     >= 50 failed traces AND significantly worse than stable.  While the ramp still
                                  moves, a pause rule firing in the same evaluation wins (the design's pause must
                                  be reachable); a paused canary that keeps failing is blocked once it fails
                                  50 more times after the pause (escalation)
blocked         pause             success rate below the 99 % floor (window binomial test or the sequential floor
                                  test); an error-rate regression against stable (sequential test, default);
                                  LLM quality: mean eval score >= 0.05 below stable and significantly lower
                                  (``eval_score_regression``)
manual_review   hold              callback failures > 2 % beyond noise (exact binomial test); Prometheus failing
                                  N times in a row; NODATA when the policy says so; LLM quality: cost per
                                  successful task > stable's + 30 % and significantly so (Welch z), or the
                                  cost of most canary traces unknown while stable's is known (``cost_per_success``).
                                  Sticky: the gate never clears it, a person acknowledges it
                                  (resume or roll back, with a comment) on the release page or the API
watching        hold              not enough evidence (statistical power not reached: "needs about N more
                                  requests"), young phase, an advance rule not met, a hole in the scrapes, the
                                  first window after a Prometheus outage, NODATA, a Prometheus error
verified        ready_to_promote  every advance rule passed, the phase ran one evaluation interval, and the
                                  phase's canary sample had the power to show the guarded regressions
==============  ================  ===============================================================================

The LLM quality rules (sla/quality.py) are findings like the others: their effect takes its row above (a tool
error regression rolls back, an eval score regression pauses, cost asks for a manual review), the most severe
effect of the evaluation wins, and an eval score pause also defers the failed-traces block while the ramp moves.

Every fired rule stays in `findings`; the verdict opens with one plain sentence (`summary`).  The function does
no I/O; the gate (sla.gate) fetches readings, the controller (sla.services) persists `next_state` and, when
`snapshot_due`, the report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from sla import explain, quality, rules
from sla.catalog import Metric
from sla.findings import Effect, Finding, GateState, GrayRelease, Outcome, ReleaseReadings
from sla.policy import SlaPolicy
from sla.stats import CusumState, LatencyCusumState

__all__ = ["Effect", "Finding", "GateState", "GrayRelease", "Outcome", "ReleaseReadings", "Verdict", "evaluate",
           "snapshot_is_due", "build_report"]


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
    summary: str = ""

    @property
    def deciding(self) -> list[Finding]:
        fired = [f for f in self.findings if f.effect is not None]
        return sorted(fired, key=lambda f: -f.effect.severity)

    @property
    def reasons(self) -> list[str]:
        """Fired rules first (they decided), then the ones that passed."""
        passed = [f for f in self.findings if f.effect is None]
        return [f.text for f in self.deciding + passed]

    def to_dict(self) -> dict:
        return {
            "release": self.release.__dict__, "at": self.at.isoformat(), "outcome": self.outcome.value,
            "status": self.status, "action": self.action, "summary": self.summary, "healthy": self.healthy,
            "snapshot_due": self.snapshot_due, "reasons": self.reasons,
            "findings": [f.to_dict() for f in self.findings], "report": self.report,
            "next_state": self.next_state.to_dict(),
        }


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

    # -- Prometheus trouble: never a pass, never a rollback; the data will have a hole -----------------------
    error = canary.error or baseline.error
    if error:
        errors = state.consecutive_prometheus_errors + 1
        limit = policy.prometheus_errors_before_manual_review
        effect = Effect.MANUAL_REVIEW if errors >= limit else Effect.WATCH
        findings.append(Finding("prometheus_available", effect,
                                f"Prometheus failed {errors} times in a row (manual review from {limit}): {error}",
                                measured=errors, threshold=limit, unit=explain.COUNT,
                                headline=f"Prometheus failed {errors} times in a row"))
        findings, manual_review = _sticky_manual_review(findings, state, release, now)
        next_state = replace(state, consecutive_prometheus_errors=errors, passing_since=None,
                             prometheus_outage=True, fresh_from=None, manual_review=manual_review)
        return _verdict(policy, release, now, Outcome.PROMETHEUS_ERROR, findings, state, next_state,
                        canary, baseline, healthy=False)
    state = replace(state, consecutive_prometheus_errors=0)
    if state.prometheus_outage:  # the first answer after an outage: the fresh window starts now
        state = replace(state, prometheus_outage=False, fresh_from=now)

    # -- NODATA: the policy says what it means -----------------------------------------------------------------
    if not canary.has_traffic_series:
        effect = rules.NODATA_EFFECT[policy.nodata_status]
        findings.append(Finding("nodata", effect,
                                f"NODATA: no {Metric.REQUEST_COUNT.value} series for {release.version} in the "
                                f"last {policy.evaluation_window_s:g} s; the policy treats it as {policy.nodata_status}",
                                headline=f"{release.version} sent no traffic data in the last "
                                         f"{policy.evaluation_window_s:g} s"))
        findings, manual_review = _sticky_manual_review(findings, state, release, now)
        next_state = replace(state, passing_since=None, manual_review=manual_review)
        return _verdict(policy, release, now, Outcome.NODATA, findings, state, next_state, canary, baseline,
                        healthy=False)

    # -- a new stable version restarts the comparisons with it -------------------------------------------------
    if state.baseline_version != release.baseline_version:
        state = replace(state, cusum=CusumState(), latency_cusum=LatencyCusumState(),
                        baseline_version=release.baseline_version)

    # -- what the phase's sample and the escalation count start from -------------------------------------------
    totals = canary.counter_totals
    if totals is not None and (state.phase_mark is None or totals.requests < state.phase_mark.requests):
        state = replace(state, phase_mark=totals, phase_mark_at=now)  # first look at this phase (or a reset)
    if release.paused and totals is not None and (state.pause_mark_failures is None
                                                   or totals.failures < state.pause_mark_failures):
        state = replace(state, pause_mark_failures=totals.failures)  # first paused look (or a counter reset)

    # -- sequential tests (seconds, any traffic), then counts, then window rules --------------------------------
    found, cusum = rules.error_regression(policy, release, canary, baseline, state)
    findings += found
    found, latency_cusum = rules.latency_regression(policy, release, canary, baseline, state)
    findings += found
    found, floor_cusum = rules.floor_breach(policy, release, canary, state)
    findings += found

    total = canary.value(Metric.REQUEST_COUNT) or 0.0
    failed = canary.value(Metric.FAILED_REQUEST_COUNT) or 0.0
    low_traffic = total < policy.min_sample_size
    findings += rules.failed_traces(policy, release, canary, baseline, state)
    findings += rules.resource_rules(policy, release, canary, baseline)
    if not low_traffic:
        findings += rules.window_rules(policy, release, canary, baseline, total, failed)
    findings += quality.quality_rules(policy, release, canary, baseline)  # LLM answer quality, tools, cost
    findings = _pause_before_block(findings, release, policy)

    findings, manual_review = _sticky_manual_review(findings, state, release, now)

    # -- advancing needs complete data, evidence and every advance rule ----------------------------------------
    outcome = Outcome.EVALUATED
    findings += rules.completeness(policy, canary, baseline, state, now)
    if not any(f.effect is not None and f.effect.severity > Effect.WATCH.severity for f in findings):
        power = rules.power_rule(policy, release, baseline, rules.phase_sample(state, canary,
                                                                                 policy.evaluation_window_s, now))
        findings.append(power)
        if power.effect is not None and power.threshold is not None:  # "needs about N more requests"
            outcome = Outcome.LOW_TRAFFIC
        findings += rules.advance_rules(policy, release, canary, baseline, total, failed)

    # Healthy means no rule objects; the evidence still needed to *advance* does not make a canary unhealthy.
    passing = not any(f.effect is not None for f in findings if f.rule != "evidence_power")
    passing_since = (state.passing_since or now) if passing else None
    healthy = passing and (now - passing_since).total_seconds() >= policy.healthy_after_s
    if passing and not any(f.effect is not None for f in findings):
        phase_age = (now - state.phase_started_at).total_seconds()
        if phase_age < policy.evaluation_interval_s:
            findings.append(Finding("phase_duration", Effect.WATCH,
                                    f"passing, but the phase has run {phase_age:.0f} s of the "
                                    f"{policy.evaluation_interval_s:g} s evaluation interval",
                                    measured=phase_age, threshold=policy.evaluation_interval_s, unit=explain.SECONDS,
                                    headline=f"{release.version} passes every rule; the phase has run "
                                             f"{phase_age:.0f} of {policy.evaluation_interval_s:g} s"))
        else:
            findings.append(Finding("phase_duration", None,
                                    f"phase has run {phase_age:.0f} s >= {policy.evaluation_interval_s:g} s",
                                    measured=phase_age, threshold=policy.evaluation_interval_s, unit=explain.SECONDS))
    if healthy:
        findings.append(Finding("healthy", None,
                                f"healthy: every rule passed for {(now - passing_since).total_seconds():.0f} s "
                                f">= {policy.healthy_after_s:g} s; allowed into the production main path"))
    next_state = replace(state, passing_since=passing_since, cusum=cusum, latency_cusum=latency_cusum,
                         floor_cusum=floor_cusum, manual_review=manual_review)
    return _verdict(policy, release, now, outcome, findings, state, next_state, canary, baseline, healthy=healthy)


def _sticky_manual_review(findings: list[Finding], state: GateState, release: GrayRelease,
                          now: datetime) -> tuple[list[Finding], dict | None]:
    """A manual review, once raised, stays until a person acknowledges it (GateState.acknowledged)."""
    manual_review = state.manual_review
    raised = next((f for f in findings if f.effect is Effect.MANUAL_REVIEW), None)
    if raised is not None and manual_review is None:
        return findings, {"since": now.isoformat(), "reason": raised.text[:500],
                          "headline": (raised.headline or "")[:200]}
    if manual_review is not None and raised is None:
        since = datetime.fromisoformat(manual_review["since"])
        findings = findings + [Finding(
            "manual_review_pending", Effect.MANUAL_REVIEW,
            f"waiting for a person since {explain.clock(since)} UTC: {manual_review['reason']}. The gate does not "
            f"clear a manual review by itself: resume or roll back on the release page (comment required)",
            headline=(f"{release.version} waits for a person since {explain.clock(since)} UTC"
                      + (f" ({manual_review['headline']})" if manual_review.get("headline") else "")))]
    return findings, manual_review


def _pause_before_block(findings: list[Finding], release: GrayRelease, policy: SlaPolicy) -> list[Finding]:
    """While the ramp moves, a pause rule wins over the failed-traces block (design: pause, then block)."""
    if release.paused or not any(f.effect is Effect.PAUSE for f in findings):
        return findings
    out = []
    for finding in findings:
        if finding.rule == "failed_traces" and finding.effect is Effect.BLOCK_VERSION:
            finding = replace(finding, effect=None, headline=None,
                              text=finding.text.replace(": version blocked in routing", "")
                              + f"; the ramp is paused first, and the version is blocked if it fails "
                                f"{policy.block_failed_traces:g} more times while paused")
        out.append(finding)
    return out


def _summary(release: GrayRelease, effect: Effect, findings: list[Finding], now: datetime) -> str:
    """One plain sentence: what happened to which version, measured how, and what the gate did when."""
    deciding = [f for f in findings if f.effect is effect]
    clause = next((f.headline for f in deciding if f.headline), None)
    if clause is None and deciding:
        clause = f"{release.version}: {deciding[0].text}"
    at = explain.clock(now)
    if effect is Effect.PROMOTE:
        power = next((f for f in findings if f.rule == "evidence_power"), None)
        seen = f" over {explain.count(power.measured)} traces this phase" if power and power.measured else ""
        if release.paused:
            return f"{release.version} passed every rule{seen}; it stays paused until a person resumes it ({at})"
        # "ready", not "promoted": the promotion itself may still wait (an approval at a gray step, a freeze);
        # what the controller did is recorded beside the verdict (GateRecord.action_taken, "Gate did").
        return f"{release.version} passed every rule{seen}: ready for the next step at {at}"
    if effect is Effect.WATCH:
        return f"{clause or release.version}: watching, nothing changed ({at})"
    if effect is Effect.MANUAL_REVIEW:
        return f"{clause}: manual review needed, the ramp holds until a person decides ({at})"
    words = explain.ACTION_WORDS[effect.action]
    if effect is Effect.PAUSE and release.paused:
        words = "stays paused"
    return f"{clause}: {words} at {at}"


def _verdict(policy, release, now, outcome, findings, state, next_state, canary, baseline, *, healthy) -> Verdict:
    fired = [f.effect for f in findings if f.effect is not None]
    effect = max(fired, key=lambda e: e.severity) if fired else Effect.PROMOTE
    changes = (effect in (Effect.ROLLBACK, Effect.BLOCK_VERSION)
               or (effect in (Effect.PAUSE, Effect.PROMOTE) and not release.paused)
               or (effect is Effect.MANUAL_REVIEW and state.manual_review is None))
    due = snapshot_is_due(policy, state, now) or changes
    if due:
        next_state = replace(next_state, last_snapshot_at=now)
    return Verdict(
        release=release, at=now, outcome=outcome, status=effect.status, action=effect.action,
        findings=tuple(findings), healthy=healthy, snapshot_due=due, next_state=next_state,
        report=build_report(release, state, canary, effect), summary=_summary(release, effect, findings, now),
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
        "success_rate": explain.rounded(canary.value(Metric.TRACE_SUCCESS_RATE), explain.RATIO),
        "p95_latency_ms": None if p95 is None else round(p95 * 1000),
        "error_trace_ratio": explain.rounded(failed / total, explain.RATIO) if total and failed is not None else None,
        "callback_fail_rate": explain.rounded(canary.value(Metric.CALLBACK_FAILURE_RATE), explain.RATIO),
        "status": effect.status,
        "action": effect.action,
    }
