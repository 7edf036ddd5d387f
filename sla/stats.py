"""Canary-versus-baseline statistics.

Three tests, each chosen for what the gate has to decide:

* **Fixed-window tests** (what a snapshot says about the last evaluation window):
  - ``failure_rate_worse``: one-sided pooled two-proportion z-test, "is the canary's failure rate higher than
    the stable version's over the same window?"  Advancing requires that this is *not* significant.
  - ``success_rate_below``: exact one-sided binomial test against the SLA floor (99 %), so a canary is paused
    only when its success rate is below the floor beyond sampling noise, not because 3 of 200 traces failed.
  - ``histogram_mann_whitney``: Mann-Whitney U computed from Prometheus histogram bucket counts.  Latencies in
    the same bucket are ties; U and its tie-corrected variance follow from the per-bucket counts alone, so no
    raw latencies are needed.  One-sided: "does a canary trace tend to take longer than a stable one?"  The
    p95 rules use Prometheus' histogram_quantile for the size of the effect and this test for its reality.

* **Sequential test** (deciding within seconds, at any traffic, with a bounded false-alarm rate):
  ``ErrorRegressionCusum``.  Condition on failed traces: if canary and stable fail at the same per-request
  rate, each failure comes from the canary with probability p0 = canary requests / all requests in that
  interval; if the canary fails theta times as often, with p_theta = theta*p0 / (theta*p0 + 1 - p0).  Each
  evaluation adds the log likelihood ratio of the failures seen since the previous one; a CUSUM (reset at 0)
  per theta in ``policy.sequential_regression_factors`` raises an alarm at h.  Because every possible change
  point starts a likelihood-ratio martingale under H0, Ville's inequality and a union bound give
  P(false alarm within n failures) <= k * n * e^-h for k factors; the policy picks
  h = ln(k * horizon / alpha).  Why this design:
    - CUSUM forgets good history: an hour of healthy traffic does not dilute a canary that turns bad now
      (a plain SPRT over the whole window would need ~30 s to overcome 10 min of good data);
    - conditioning on failures makes the test immune to shared noise: a downstream outage that raises both
      versions' error rates cancels out, and the traffic split may change between evaluations;
    - the evidence per canary failure is ln(p_theta/p0), which is large at a 5 % gray share, so a bad canary
      at 50 req/s is caught after a handful of failures (seconds), while a healthy one drifts down.
  Always-valid p-values / mixture SPRT over the whole phase were the alternative; they control the error
  rate over unlimited peeking too, but they accumulate from the phase start and so react slowly to a late
  onset.  Counter resets (a negative delta) restart the increment, never the CUSUM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats


@dataclass(frozen=True)
class TestResult:
    name: str
    statistic: float
    p_value: float

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def describe(self) -> str:
        return f"{self.name}: statistic={self.statistic:.3f}, p={self.p_value:.3g}"


def failure_rate_worse(canary_failures: float, canary_total: float,
                       baseline_failures: float, baseline_total: float) -> TestResult:
    """One-sided pooled two-proportion z-test, H1: canary failure rate > baseline failure rate."""
    if canary_total <= 0 or baseline_total <= 0:
        return TestResult("two-proportion z", 0.0, 1.0)
    p_canary = canary_failures / canary_total
    p_baseline = baseline_failures / baseline_total
    pooled = (canary_failures + baseline_failures) / (canary_total + baseline_total)
    variance = pooled * (1 - pooled) * (1 / canary_total + 1 / baseline_total)
    if variance <= 0:
        # Both error-free (or both all-failing): no evidence either way.
        return TestResult("two-proportion z", 0.0, 1.0)
    z = (p_canary - p_baseline) / math.sqrt(variance)
    return TestResult("two-proportion z", z, float(scipy_stats.norm.sf(z)))


def success_rate_below(successes: float, total: float, floor: float) -> TestResult:
    """Exact one-sided binomial test, H1: true success rate < floor."""
    n = int(round(total))
    k = min(n, max(0, int(round(successes))))
    if n == 0:
        return TestResult("binomial vs floor", 0.0, 1.0)
    result = scipy_stats.binomtest(k, n, floor, alternative="less")
    return TestResult("binomial vs floor", k / n, float(result.pvalue))


def _per_bucket(cumulative: list[tuple[float, float]]) -> np.ndarray:
    counts = np.array([c for _, c in sorted(cumulative, key=lambda b: b[0])], dtype=float)
    per_bucket = np.diff(counts, prepend=0.0)
    # increase() extrapolation can make neighbouring cumulative buckets slightly non-monotone.
    return np.clip(per_bucket, 0.0, None)


def histogram_mann_whitney(canary_buckets: list[tuple[float, float]],
                           baseline_buckets: list[tuple[float, float]]) -> TestResult:
    """Mann-Whitney U from cumulative histogram buckets [(le, count), ...] with identical bounds.

    H1: canary latencies are stochastically larger.  Statistic reported: the probability that a random canary
    trace is slower than a random stable one (0.5 = no difference), ties counting half.
    """
    canary_bounds = sorted(b for b, _ in canary_buckets)
    baseline_bounds = sorted(b for b, _ in baseline_buckets)
    if canary_bounds != baseline_bounds:
        raise ValueError("canary and baseline histograms have different bucket bounds")
    c = _per_bucket(canary_buckets)
    b = _per_bucket(baseline_buckets)
    n1, n2 = c.sum(), b.sum()
    if n1 <= 0 or n2 <= 0:
        return TestResult("Mann-Whitney U (histogram)", 0.5, 1.0)
    baseline_below = np.cumsum(b) - b
    u = float(np.sum(c * (baseline_below + 0.5 * b)))
    n = n1 + n2
    ties = c + b
    tie_term = float(np.sum(ties**3 - ties)) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return TestResult("Mann-Whitney U (histogram)", u / (n1 * n2), 1.0)
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)  # continuity correction
    return TestResult("Mann-Whitney U (histogram)", u / (n1 * n2), float(scipy_stats.norm.sf(z)))


# ------------------------------------------------------------------------------------------------------------
# Sequential test
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CounterTotals:
    """Raw cumulative counter values (not windowed) for one version."""

    requests: float
    failures: float


@dataclass(frozen=True)
class CusumState:
    statistics: tuple[float, ...] = ()
    last_canary: CounterTotals | None = None
    last_baseline: CounterTotals | None = None

    def to_dict(self) -> dict:
        def totals(t):
            return None if t is None else {"requests": t.requests, "failures": t.failures}

        return {"statistics": list(self.statistics), "last_canary": totals(self.last_canary),
                "last_baseline": totals(self.last_baseline)}

    @classmethod
    def from_dict(cls, data: dict | None) -> "CusumState":
        if not data:
            return cls()

        def totals(t):
            return None if t is None else CounterTotals(float(t["requests"]), float(t["failures"]))

        return cls(tuple(float(s) for s in data.get("statistics", ())), totals(data.get("last_canary")),
                   totals(data.get("last_baseline")))


@dataclass(frozen=True)
class SequentialResult:
    statistic: float  # the largest CUSUM (log likelihood ratio)
    threshold: float
    factor: float | None  # the regression factor whose CUSUM is largest
    canary_failures_added: float
    baseline_failures_added: float

    @property
    def alarm(self) -> bool:
        return self.statistic >= self.threshold


def error_regression_cusum(state: CusumState, canary: CounterTotals, baseline: CounterTotals, *,
                           factors: tuple[float, ...], threshold: float) -> tuple[CusumState, SequentialResult]:
    """Fold the failures since the previous call into one CUSUM per regression factor."""
    statistics = state.statistics if len(state.statistics) == len(factors) else tuple(0.0 for _ in factors)
    canary_failures = baseline_failures = 0.0
    if state.last_canary is not None and state.last_baseline is not None:
        d_canary_n = canary.requests - state.last_canary.requests
        d_canary_x = canary.failures - state.last_canary.failures
        d_base_n = baseline.requests - state.last_baseline.requests
        d_base_x = baseline.failures - state.last_baseline.failures
        counter_reset = min(d_canary_n, d_canary_x, d_base_n, d_base_x) < 0
        if not counter_reset and d_canary_n > 0 and d_base_n > 0:
            canary_failures, baseline_failures = d_canary_x, d_base_x
            p0 = d_canary_n / (d_canary_n + d_base_n)
            updated = []
            for theta, s in zip(factors, statistics):
                p1 = theta * p0 / (theta * p0 + 1 - p0)
                llr = d_canary_x * math.log(p1 / p0) + d_base_x * math.log((1 - p1) / (1 - p0))
                updated.append(max(0.0, s + llr))
            statistics = tuple(updated)
    best = max(range(len(factors)), key=lambda i: statistics[i]) if factors else None
    result = SequentialResult(
        statistic=statistics[best] if best is not None else 0.0,
        threshold=threshold,
        factor=factors[best] if best is not None else None,
        canary_failures_added=canary_failures,
        baseline_failures_added=baseline_failures,
    )
    return CusumState(statistics, canary, baseline), result
