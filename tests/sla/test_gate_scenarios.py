"""The scenario table: one case per SLA rule, evaluated against a real Prometheus with backfilled history.

All backfilled scenarios are evaluated in ONE batched `evaluate_many` call (as the ramp controller does), then
each case checks its own verdict.
"""

from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from sla.gate import evaluate_many
from sla.policy import SlaPolicy
from sla.prometheus import PrometheusClient
from tests.sla.prometheus_fakes import free_port
from sla.verdict import GateState, GrayRelease, Outcome

from .conftest import CANARY, ENV, STABLE

WINDOW_S = 300
POLICY = SlaPolicy(evaluation_window_s=WINDOW_S, evaluation_interval_s=60, first_snapshot_within_s=120,
                   healthy_after_s=600)


@dataclass(frozen=True)
class Scenario:
    service: str
    status: str
    action: str
    decided_by: str | tuple | None  # the rule(s) whose effect won (None: nothing fired)
    outcome: Outcome = Outcome.EVALUATED
    policy_overrides: dict = field(default_factory=dict)
    state_overrides: dict = field(default_factory=dict)  # seconds before `at` for datetimes
    healthy: bool = False


SCENARIOS = {
    "healthy canary advances": Scenario("healthy", "verified", "ready_to_promote", None),
    "healthy for the healthy period is allowed into the main path": Scenario(
        "healthy", "verified", "ready_to_promote", None, state_overrides={"passing_since": 601}, healthy=True),
    "passing canary in a young phase keeps watching": Scenario(
        "healthy", "watching", "hold", "phase_duration", state_overrides={"phase_started_at": 30}),
    "success rate below 99 % pauses the ramp": Scenario(
        "low-success", "blocked", "pause", ("success_rate_floor", "error_regression_sequential")),
    "p95 above baseline + 20 % rolls back": Scenario(
        "slow", "rollbacked", "rollback", ("p95_latency_rollback", "latency_regression_sequential")),
    "p95 between +10 % and +20 % only holds": Scenario("slightly-slow", "watching", "hold", "p95_latency_advance"),
    "50 failed traces block the version": Scenario("many-failures", "blocked", "block_version", "failed_traces"),
    "failures shared with the stable version do not block the canary": Scenario(
        "shared-outage", "watching", "hold", ("success_rate_advance", "evidence_power")),
    "callback failures above 2 % need manual review": Scenario(
        "callback-anomaly", "manual_review", "hold", "callback_failure_rate"),
    "log errors over the threshold hold the ramp": Scenario("noisy-logs", "watching", "hold", "log_errors"),
    "crashing canary rolls back": Scenario("crashing", "rollbacked", "rollback", "agent_crashes"),
    "memory bloat rolls back": Scenario("memory-bloat", "rollbacked", "rollback", "memory_spike_ratio"),
    "no canary series is NODATA, watching by default": Scenario(
        "no-canary", "watching", "hold", "nodata", outcome=Outcome.NODATA),
    "NODATA means what the policy says": Scenario(
        "no-canary", "manual_review", "hold", "nodata", outcome=Outcome.NODATA,
        policy_overrides={"nodata_status": "manual_review"}),
    "low traffic never promotes nor fails: not enough evidence": Scenario(
        "low-traffic", "watching", "hold", ("evidence_power", "success_rate_advance", "failure_rate_vs_baseline"),
        outcome=Outcome.LOW_TRAFFIC),
}


def _state(at, overrides: dict) -> GateState:
    state = GateState(deployed_at=at - timedelta(hours=1), phase_started_at=at - timedelta(seconds=600))
    return replace(state, **{name: at - timedelta(seconds=s) for name, s in overrides.items()})


def _release(service: str) -> GrayRelease:
    return GrayRelease(service=service, env=ENV, version=CANARY, baseline_version=STABLE)


PRIMED_S = 240  # the gate first looked at each phase this long before `at`: the phase's sample starts there


@pytest.fixture(scope="module")
def scenario_verdicts(prometheus, history_end):
    """Every scenario evaluated in a single batched call, after a first look PRIMED_S earlier (as the gate,
    which evaluates every few seconds, would have had)."""
    names = list(SCENARIOS)
    releases = [_release(SCENARIOS[n].service) for n in names]
    policies = {id(release): POLICY.with_overrides(SCENARIOS[n].policy_overrides)
                for n, release in zip(names, releases)}
    client = PrometheusClient(prometheus.url)
    try:
        first_at = history_end - timedelta(seconds=PRIMED_S)
        first = evaluate_many(client, lambda r: policies[id(r)],
                              [(r, _state(history_end, {})) for r in releases], at=first_at)
        inputs = [(r, replace(v.next_state, **_overrides(history_end, SCENARIOS[n].state_overrides)))
                  for n, r, v in zip(names, releases, first)]
        verdicts = evaluate_many(client, lambda r: policies[id(r)], inputs, at=history_end)
    finally:
        client.close()
    return dict(zip(names, verdicts))


def _overrides(at, overrides: dict) -> dict:
    return {name: at - timedelta(seconds=s) for name, s in overrides.items()}


def _decided_by(verdict) -> set | None:
    """The rules that fired with the winning effect."""
    fired = [f for f in verdict.findings if f.effect is not None]
    if not fired:
        return None
    top = max(f.effect.severity for f in fired)
    return {f.rule for f in fired if f.effect.severity == top}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_table(scenario_verdicts, name):
    scenario, verdict = SCENARIOS[name], scenario_verdicts[name]
    explained = "\n".join(verdict.reasons)
    assert (verdict.status, verdict.action) == (scenario.status, scenario.action), explained
    assert verdict.outcome is scenario.outcome, explained
    expected = scenario.decided_by
    if expected is None:
        assert _decided_by(verdict) is None, explained
    else:
        expected = {expected} if isinstance(expected, str) else set(expected)
        assert _decided_by(verdict) and _decided_by(verdict) <= expected, explained
    assert verdict.healthy is scenario.healthy, explained
    assert verdict.report["status"] == scenario.status and verdict.report["action"] == scenario.action


@pytest.mark.parametrize("sequential_action, status", [("pause", "blocked"), ("rollback", "rollbacked")])
def test_canary_turning_bad_is_stopped_by_the_sequential_test(prometheus, history_end, sequential_action, status):
    """Error rate 0.1 % -> 5 % 30 s before `at`: too few failures for the window rules, enough for the CUSUM.
    The design table pauses on an error regression; rolling back stays a policy choice."""
    release = _release("turns-bad")
    policy = POLICY.with_overrides({"sequential_action": sequential_action})
    client = PrometheusClient(prometheus.url)
    try:
        before = history_end - timedelta(seconds=35)
        state = _state(before, {})
        [first] = evaluate_many(client, lambda r: policy, [(release, state)], at=before)
        [second] = evaluate_many(client, lambda r: policy, [(release, first.next_state)], at=history_end)
    finally:
        client.close()
    assert first.status in ("watching", "verified"), "\n".join(first.reasons)
    assert (second.status, second.action) == (status, sequential_action), "\n".join(second.reasons)
    assert "error_regression_sequential" in _decided_by(second)
    fired = {f.rule for f in second.findings if f.effect is not None}
    assert fired <= {"error_regression_sequential", "success_floor_sequential"}, \
        "only the sequential tests have enough evidence this early"
    assert second.summary.startswith("v2 failed ") and "against 0.10 % on v1" in second.summary


@pytest.mark.parametrize("errors_before, status", [(0, "watching"), (2, "manual_review")])
def test_prometheus_down_watches_then_asks_for_manual_review(history_end, errors_before, status):
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)  # nothing listens there
    state = replace(_state(history_end, {}), consecutive_prometheus_errors=errors_before)
    try:
        [verdict] = evaluate_many(client, lambda r: POLICY, [(_release("healthy"), state)], at=history_end)
    finally:
        client.close()
    assert (verdict.status, verdict.action, verdict.outcome) == (status, "hold", Outcome.PROMETHEUS_ERROR)
    assert "unreachable" in verdict.reasons[0]
    assert f"failed {errors_before + 1} times in a row" in verdict.summary
    assert verdict.next_state.consecutive_prometheus_errors == errors_before + 1
    assert verdict.report["success_rate"] is None


def test_report_has_the_design_shape(scenario_verdicts):
    report = scenario_verdicts["healthy canary advances"].report
    assert list(report) == ["version", "start_ts", "agent_group", "success_rate", "p95_latency_ms",
                            "error_trace_ratio", "callback_fail_rate", "status", "action"]
    assert report["version"] == CANARY
    assert report["success_rate"] == pytest.approx(0.999, abs=1e-4)
    assert report["p95_latency_ms"] == pytest.approx(500, abs=5)
    assert report["error_trace_ratio"] == pytest.approx(0.001, abs=1e-4)
    assert report["callback_fail_rate"] == pytest.approx(0.001, abs=1e-4)


def test_every_fired_rule_explains_itself_with_value_threshold_and_query(scenario_verdicts):
    verdict = scenario_verdicts["p95 above baseline + 20 % rolls back"]
    [finding] = [f for f in verdict.findings if f.rule == "p95_latency_rollback"]
    assert finding.measured > finding.threshold
    assert finding.query.startswith("histogram_quantile(0.95")
    assert "Mann-Whitney" in finding.text and "ms" in finding.text


def test_shared_outage_counts_enough_failures_to_block_but_blames_nobody(scenario_verdicts):
    verdict = scenario_verdicts["failures shared with the stable version do not block the canary"]
    [finding] = [f for f in verdict.findings if f.rule == "failed_traces"]
    assert finding.measured >= 50 and finding.effect is None
    assert "not significantly worse" in finding.text
