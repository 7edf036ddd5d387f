"""The statistics behave as their docstrings promise."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from sla.stats import (
    CounterTotals, CusumState, error_regression_cusum, failure_rate_worse, histogram_mann_whitney,
    success_rate_below,
)

BOUNDS = [0.1, 0.2, 0.5, 1.0, math.inf]


def _cumulative(values):
    return [(b, float(np.sum(np.asarray(values) <= b))) for b in BOUNDS]


def test_histogram_mann_whitney_matches_scipy_on_bucketed_values():
    rng = np.random.default_rng(7)
    canary = rng.choice([0.05, 0.15, 0.4, 0.8, 2.0], size=300, p=[0.1, 0.3, 0.3, 0.2, 0.1])
    baseline = rng.choice([0.05, 0.15, 0.4, 0.8, 2.0], size=400, p=[0.2, 0.3, 0.3, 0.15, 0.05])
    ours = histogram_mann_whitney(_cumulative(canary), _cumulative(baseline))
    reference = scipy_stats.mannwhitneyu(canary, baseline, alternative="greater", method="asymptotic")
    assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert ours.statistic == pytest.approx(reference.statistic / (300 * 400))


def test_identical_histograms_show_no_latency_difference():
    same = [(0.1, 100.0), (0.5, 900.0), (math.inf, 1000.0)]
    result = histogram_mann_whitney(same, same)
    assert result.statistic == pytest.approx(0.5) and result.p_value > 0.4


def test_histograms_with_different_bounds_are_refused():
    with pytest.raises(ValueError, match="bucket bounds"):
        histogram_mann_whitney([(0.1, 1.0), (math.inf, 2.0)], [(0.2, 1.0), (math.inf, 2.0)])


def test_two_proportion_test_flags_a_worse_canary_only():
    assert failure_rate_worse(30, 1000, 10, 10000).significant(0.05)
    assert not failure_rate_worse(1, 1000, 10, 10000).significant(0.05)
    assert not failure_rate_worse(0, 1000, 0, 1000).significant(0.05)


def test_binomial_floor_test_needs_evidence_not_just_a_low_point_estimate():
    assert not success_rate_below(197, 200, 0.99).significant(0.05)  # 98.5 % of 200: noise
    assert success_rate_below(9850, 10000, 0.99).significant(0.05)  # 98.5 % of 10 000: real


def _run_cusum(rng, *, seconds, canary_rps, baseline_rps, canary_error, baseline_error, threshold,
               factors=(3.0, 10.0, 30.0)):
    state, canary, baseline = CusumState(), CounterTotals(0, 0), CounterTotals(0, 0)
    for second in range(seconds):
        cn, bn = rng.poisson(canary_rps), rng.poisson(baseline_rps)
        canary = CounterTotals(canary.requests + cn, canary.failures + rng.binomial(cn, canary_error(second)))
        baseline = CounterTotals(baseline.requests + bn, baseline.failures + rng.binomial(bn, baseline_error))
        state, result = error_regression_cusum(state, canary, baseline, factors=factors, threshold=threshold)
        if result.alarm:
            return second
    return None


def test_cusum_catches_a_canary_turning_bad_within_seconds():
    rng = np.random.default_rng(1)
    onset = 120
    alarm = _run_cusum(rng, seconds=200, canary_rps=50, baseline_rps=950,
                       canary_error=lambda s: 0.001 if s < onset else 0.05, baseline_error=0.001,
                       threshold=math.log(3 * 1000 / 0.01))
    assert alarm is not None and onset <= alarm <= onset + 10


def test_cusum_leaves_healthy_canaries_alone():
    rng = np.random.default_rng(2)
    alarms = [_run_cusum(rng, seconds=300, canary_rps=50, baseline_rps=950, canary_error=lambda s: 0.001,
                         baseline_error=0.001, threshold=math.log(3 * 1000 / 0.01)) for _ in range(20)]
    assert alarms == [None] * 20


def test_cusum_survives_counter_resets_and_round_trips_as_json():
    state = CusumState()
    state, _ = error_regression_cusum(state, CounterTotals(100, 1), CounterTotals(1000, 1), factors=(3.0,), threshold=5)
    state, result = error_regression_cusum(state, CounterTotals(10, 0), CounterTotals(1100, 1), factors=(3.0,), threshold=5)
    assert result.canary_failures_added == 0 and not result.alarm  # the canary restarted: increment skipped
    assert CusumState.from_dict(state.to_dict()) == state


@pytest.mark.parametrize("failures,total", [(4, 43), (3, 40), (2, 21), (6, 120)])
def test_rare_failures_on_a_small_canary_are_judged_exactly_not_by_the_normal_approximation(failures, total):
    """2 % stable tool errors, a young canary: the exact test's p-value, several times larger than z's."""
    result = failure_rate_worse(failures, total, 2000, 100000)
    exact = scipy_stats.fisher_exact([[failures, total - failures], [2000, 98000]], alternative="greater").pvalue
    assert result.name == "Fisher exact" and result.p_value == pytest.approx(exact, rel=1e-9)
    assert not result.significant(0.001)


def test_plenty_of_expected_failures_keep_the_two_proportion_z_test():
    result = failure_rate_worse(60, 1000, 2000, 100000)
    assert result.name == "two-proportion z" and result.significant(0.001)
    assert failure_rate_worse(9, 40, 2000, 100000).significant(0.001), "a real jump is still seen on 40 calls"
