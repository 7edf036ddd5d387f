"""What the gate remembers between evaluations (sla.findings.GateState), through sla.verdict.evaluate.

Readings are built by hand here (no Prometheus): these tests are about the memory, not the queries.
"""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sla.catalog import Metric
from sla.policy import SlaPolicy
from sla.prometheus import Reading
from sla.stats import CounterTotals, CusumState
from sla.verdict import GateState, GrayRelease, ReleaseReadings, evaluate

AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
POLICY = SlaPolicy(evaluation_window_s=60, evaluation_interval_s=10, min_sample_size=50, block_failed_traces=20)


def readings(at, *, requests, failures, total_requests, total_failures) -> ReleaseReadings:
    def reading(value):
        return Reading(value, "q", 60, at)

    return ReleaseReadings(at=at, metrics={
        Metric.REQUEST_COUNT: reading(requests), Metric.FAILED_REQUEST_COUNT: reading(failures),
        Metric.TRACE_SUCCESS_RATE: reading(1 - failures / requests)},
        counter_totals=CounterTotals(total_requests, total_failures))


def test_a_new_stable_version_restarts_the_sequential_comparison():
    state = GateState(AT - timedelta(hours=1), AT - timedelta(hours=1), baseline_version="v0",
                      cusum=CusumState((9.0, 9.0, 9.0), CounterTotals(10, 0), CounterTotals(10, 0)))
    release = GrayRelease("svc", "test", "v2", "v1")
    verdict = evaluate(POLICY, readings(AT, requests=600, failures=1, total_requests=600, total_failures=1),
                       readings(AT, requests=6000, failures=6, total_requests=6000, total_failures=6), state,
                       release=release)
    assert verdict.next_state.baseline_version == "v1"
    assert verdict.next_state.cusum.statistics == (0.0, 0.0, 0.0), "v0's evidence is not carried over to v1"


def test_a_paused_canary_is_blocked_after_the_limit_of_new_failures_not_its_old_ones():
    release = GrayRelease("svc", "test", "v2", "v1", paused=True)
    stable = readings(AT, requests=6000, failures=6, total_requests=60000, total_failures=60)
    state = GateState(AT - timedelta(hours=1), AT - timedelta(minutes=1))
    # 100 failures before the pause: none of them counts for the escalation.
    first = evaluate(POLICY, readings(AT, requests=600, failures=60, total_requests=5000, total_failures=100),
                     stable, state, release=release)
    assert first.next_state.pause_mark_failures == 100
    assert first.action == "pause", first.summary  # still failing: stays paused, not blocked yet
    later = AT + timedelta(seconds=10)
    second = evaluate(POLICY, readings(later, requests=600, failures=60, total_requests=5300, total_failures=125),
                      replace(stable, at=later), first.next_state, release=release)
    assert second.action == "block_version", second.summary
    [finding] = [f for f in second.findings if f.rule == "failed_traces"]
    assert finding.measured == 25 and "since the ramp was paused" in finding.text


def test_a_counter_reset_while_paused_restarts_the_escalation_count():
    release = GrayRelease("svc", "test", "v2", "v1", paused=True)
    stable = readings(AT, requests=6000, failures=6, total_requests=60000, total_failures=60)
    state = GateState(AT - timedelta(hours=1), AT - timedelta(minutes=1), pause_mark_failures=500.0)
    verdict = evaluate(POLICY, readings(AT, requests=600, failures=30, total_requests=300, total_failures=10),
                       stable, state, release=release)
    assert verdict.next_state.pause_mark_failures == 10
    assert verdict.action != "block_version"


def test_while_the_ramp_moves_a_pause_rule_wins_over_the_block_and_says_what_comes_next():
    release = GrayRelease("svc", "test", "v2", "v1")
    stable = readings(AT, requests=6000, failures=6, total_requests=60000, total_failures=60)
    verdict = evaluate(POLICY, readings(AT, requests=600, failures=60, total_requests=5000, total_failures=100),
                       stable, GateState(AT - timedelta(hours=1), AT - timedelta(minutes=1)), release=release)
    assert (verdict.status, verdict.action) == ("blocked", "pause"), verdict.summary
    [finding] = [f for f in verdict.findings if f.rule == "failed_traces"]
    assert finding.effect is None and "blocked if it fails 20 more times while paused" in finding.text


def test_the_time_a_canary_still_needs_uses_the_traffic_of_its_current_step():
    """Right after 5 % -> 10 %, the window still holds the 5 % traffic: the phase's own rate tells the time."""
    from sla import rules

    now = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    window_s = 300.0
    for rate_now, earlier_share in ((4.0, 0.5), (10.0, 0.25), (0.5, 0.0)):
        # the last 60 s at `rate_now`; the 240 s before at a fraction of it (a smaller weight, or no canary yet)
        in_window = rate_now * 60 + rate_now * earlier_share * 240
        readings = ReleaseReadings(at=now, metrics={Metric.REQUEST_COUNT: Reading(in_window, "q", 300, now)},
                                   counter_totals=CounterTotals(requests=1000 + rate_now * 60, failures=0))
        state = GateState(deployed_at=now - timedelta(hours=1), phase_started_at=now - timedelta(seconds=60),
                          phase_mark=CounterTotals(requests=1000, failures=0), phase_mark_at=now - timedelta(seconds=60))
        assert rules.phase_sample(state, readings, window_s, now).rate_per_s == rate_now
        assert rules.phase_sample(state, readings, window_s).rate_per_s == in_window / window_s  # no clock: window
        young = replace(state, phase_mark_at=now - timedelta(seconds=5))  # too young to have a rate of its own
        assert rules.phase_sample(young, readings, window_s, now).rate_per_s == in_window / window_s
