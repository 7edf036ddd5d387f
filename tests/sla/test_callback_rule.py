"""Callback failures above the limit ask for a person only with evidence (sla.rules: the callback rule).

One failed callback among a young canary's first 40 is 2.5 %, above the design's 2 % limit, yet a channel that
fails 0.02 % of the time shows it now and then; a manual review is sticky, so a single unlucky callback would
stop a healthy ramp until someone clicks. The rule asks the exact binomial test (failures above the limit, at
the policy's stop_significance) before it calls for a person; above the limit without that evidence the ramp
holds (watching) and says so. Readings are built by hand: this is about the rule, not the queries.
"""
from datetime import datetime, timedelta, timezone

import pytest
from scipy import stats as scipy_stats

from sla.catalog import Metric
from sla.policy import SlaPolicy
from sla.prometheus import Reading
from sla.stats import CounterTotals
from sla.verdict import GateState, GrayRelease, ReleaseReadings, evaluate

AT = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
RELEASE = GrayRelease("agent-infer", "prod", "v1.1.0", "v1.0.0")


def readings(*, requests: int, callbacks: int, callback_failures: int) -> ReleaseReadings:
    def reading(value):
        return Reading(value, "q", 30, AT)

    return ReleaseReadings(at=AT, metrics={
        Metric.REQUEST_COUNT: reading(requests), Metric.FAILED_REQUEST_COUNT: reading(0.0),
        Metric.TRACE_SUCCESS_RATE: reading(1.0),
        Metric.CALLBACK_COUNT: reading(callbacks),
        Metric.CALLBACK_FAILURE_RATE: reading(callback_failures / callbacks)},
        counter_totals=CounterTotals(requests, 0))


def judge(policy: SlaPolicy, *, callbacks: int, failures: int):
    stable = readings(requests=20 * callbacks, callbacks=20 * callbacks, callback_failures=0)
    state = GateState(AT - timedelta(minutes=5), AT - timedelta(minutes=5))
    verdict = evaluate(policy, readings(requests=callbacks, callbacks=callbacks, callback_failures=failures), stable,
                       state, release=RELEASE)
    [finding] = [f for f in verdict.findings if f.rule == "callback_failure_rate"]
    return verdict, finding


def p_value(callbacks: int, failures: int, limit: float) -> float:
    return scipy_stats.binomtest(failures, callbacks, limit, alternative="greater").pvalue


@pytest.mark.parametrize("callbacks,failures", [(40, 1), (45, 1), (60, 2), (300, 9)])
def test_a_few_failed_callbacks_above_the_limit_hold_the_ramp_without_asking_for_a_person(callbacks, failures):
    policy = SlaPolicy(evaluation_window_s=30, min_callback_sample_size=40)
    assert failures / callbacks > policy.review_callback_failure_rate
    assert p_value(callbacks, failures, policy.review_callback_failure_rate) >= policy.stop_significance
    verdict, finding = judge(policy, callbacks=callbacks, failures=failures)
    assert verdict.status == "watching" and verdict.action == "hold", verdict.summary
    assert verdict.next_state.manual_review is None, "no sticky review without evidence"
    assert f"{failures} of {callbacks} callbacks failed" in finding.text
    assert "too few to tell from noise" in finding.text and "does not advance" in finding.text


@pytest.mark.parametrize("limit,callbacks,failures", [(0.02, 1200, 60), (0.02, 400, 25), (0.05, 2000, 150),
                                                      (0.01, 500, 20)])
def test_callback_failures_beyond_noise_ask_for_a_person_and_say_the_numbers(limit, callbacks, failures):
    policy = SlaPolicy(evaluation_window_s=300, review_callback_failure_rate=limit)
    assert p_value(callbacks, failures, limit) < policy.stop_significance
    verdict, finding = judge(policy, callbacks=callbacks, failures=failures)
    assert (verdict.status, verdict.action) == ("manual_review", "hold"), verdict.summary
    assert verdict.next_state.manual_review["headline"] == finding.headline
    assert f"{failures} of {callbacks:,} callbacks failed" in finding.text
    assert "output channel anomaly" in finding.text and "p = " in finding.text


def test_a_looser_stop_significance_needs_less_evidence():
    """Same counts, two policies: the policy's stop_significance is what decides."""
    strict, loose = SlaPolicy(min_callback_sample_size=40), SlaPolicy(min_callback_sample_size=40,
                                                                      stop_significance=0.2)
    assert judge(strict, callbacks=60, failures=3)[0].action == "hold"
    assert judge(strict, callbacks=60, failures=3)[0].status == "watching"
    assert judge(loose, callbacks=60, failures=3)[0].status == "manual_review"


def test_the_pending_review_names_what_raised_it():
    """Later verdicts keep saying why the ramp waits, not only since when."""
    policy = SlaPolicy(evaluation_window_s=300)
    first, finding = judge(policy, callbacks=1200, failures=60)
    healthy_stable = readings(requests=24000, callbacks=24000, callback_failures=0)
    later = evaluate(policy, readings(requests=1200, callbacks=1200, callback_failures=0), healthy_stable,
                     first.next_state, release=RELEASE)
    assert later.status == "manual_review", later.summary
    assert finding.headline in later.summary and "waits for a person since 12:00" in later.summary
