"""Canary-versus-baseline statistics.

Three tests, each chosen for what the gate has to decide:

* **Fixed-window tests** (what a snapshot says about the last evaluation window):
  - ``failure_rate_worse``: one-sided pooled two-proportion z-test, "is the canary's failure rate higher than
    the stable version's over the same window?"  Advancing requires that this is *not* significant.  With
    fewer than 10 failures expected on a side (rare failures, a young canary) it is Fisher's exact test.
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
        return f"{self.name}, {readable_p(self.p_value)}"


# Below this many failures expected on a side (pooled rate x its size) the normal approximation does not hold.
EXACT_BELOW_EXPECTED_FAILURES = 10.0


def failure_rate_worse(canary_failures: float, canary_total: float,
                       baseline_failures: float, baseline_total: float) -> TestResult:
    """One-sided test, H1: canary failure rate > baseline failure rate.

    The pooled two-proportion z-test where both sides expect at least EXACT_BELOW_EXPECTED_FAILURES failures at
    the pooled rate; Fisher's exact test otherwise.  Rare failures on a young canary are where the z-test lies:
    4 failed tool calls of 43 against a 2 % stable give z's p = 3e-4, while the exact p is 0.011."""
    if canary_total <= 0 or baseline_total <= 0:
        return TestResult("two-proportion z", 0.0, 1.0)
    p_canary = canary_failures / canary_total
    p_baseline = baseline_failures / baseline_total
    pooled = (canary_failures + baseline_failures) / (canary_total + baseline_total)
    if pooled * min(canary_total, baseline_total) < EXACT_BELOW_EXPECTED_FAILURES and pooled > 0:
        table = [[round(canary_failures), max(0, round(canary_total - canary_failures))],
                 [round(baseline_failures), max(0, round(baseline_total - baseline_failures))]]
        result = scipy_stats.fisher_exact(table, alternative="greater")
        return TestResult("Fisher exact", p_canary - p_baseline, float(result.pvalue))
    variance = pooled * (1 - pooled) * (1 / canary_total + 1 / baseline_total)
    if variance <= 0:
        # Both error-free (or both all-failing): no evidence either way.
        return TestResult("two-proportion z", 0.0, 1.0)
    z = (p_canary - p_baseline) / math.sqrt(variance)
    return TestResult("two-proportion z", z, float(scipy_stats.norm.sf(z)))


def mean_lower(canary_mean: float, canary_var: float, canary_n: float,
               baseline_mean: float, baseline_var: float, baseline_n: float) -> TestResult:
    """One-sided Welch z-test on two means (large samples), H1: canary mean < baseline mean."""
    if canary_n < 2 or baseline_n < 2:
        return TestResult("Welch z on means", 0.0, 1.0)
    variance = max(canary_var, 0.0) / canary_n + max(baseline_var, 0.0) / baseline_n
    if variance <= 0:
        diff = baseline_mean - canary_mean
        return TestResult("Welch z on means", math.inf if diff > 0 else 0.0, 0.0 if diff > 0 else 1.0)
    z = (baseline_mean - canary_mean) / math.sqrt(variance)
    return TestResult("Welch z on means", z, float(scipy_stats.norm.sf(z)))


def mean_above_scaled(canary_mean: float, canary_var: float, canary_n: float, factor: float,
                      baseline_mean: float, baseline_var: float, baseline_n: float) -> TestResult:
    """One-sided Welch z-test, H1: canary mean > factor x baseline mean (e.g. cost per task above stable's
    + 30 %: factor 1.3).  Large samples; the variances are the per-item ones."""
    if canary_n < 2 or baseline_n < 2:
        return TestResult("Welch z on means", 0.0, 1.0)
    variance = max(canary_var, 0.0) / canary_n + factor * factor * max(baseline_var, 0.0) / baseline_n
    diff = canary_mean - factor * baseline_mean
    if variance <= 0:
        return TestResult("Welch z on means", math.inf if diff > 0 else 0.0, 0.0 if diff > 0 else 1.0)
    z = diff / math.sqrt(variance)
    return TestResult("Welch z on means", z, float(scipy_stats.norm.sf(z)))


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
    # Buckets scraped at different moments can make neighbouring cumulative counts slightly non-monotone.
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


# ------------------------------------------------------------------------------------------------------------
# Sequential tests on latency and on the success floor
# ------------------------------------------------------------------------------------------------------------
#
# Latency: the same conditioning trick as the error test.  T is the stable version's p95 over the window, so
# about 5 % of stable traces are slower than T.  If the canary's latencies are the stable's scaled by (1 + m),
# the canary exceeds T as often as the stable exceeds T / (1 + m): rho(m) = S(T / (1 + m)) / S(T) times the
# stable's exceedance rate, where S is the stable's survival function read off its window histogram.  Given
# the traces slower than T in an interval (from both versions), each comes from the canary with probability
# rho * n_c / (rho * n_c + n_s).  H0 is "slower by the advance margin at most" (rho0 = rho(advance)), H1 is
# "slower by the rollback margin" (rho1 = rho(rollback)); a CUSUM over those Bernoulli observations alarms at
# h = ln(horizon / alpha), exactly as for errors (one factor).  A slowdown shared by both versions (a slow
# downstream) raises both exceedance counts and cancels out; an hour of healthy history does not dilute a
# regression that starts now.
#
# Floor: an absolute rule (design table: success below 99 % pauses), so no conditioning: each canary trace is
# a Bernoulli failure with p0 = 1 - floor under H0 ("exactly at the floor") against p1 = factor * p0, one CUSUM
# per factor, alarm at ln(k * horizon / alpha); the horizon counts evaluations for this test.


def cumulative_at(buckets: list[tuple[float, float]], x: float) -> float:
    """Count of observations <= x from cumulative buckets [(le, count), ...], linear inside a bucket (as
    Prometheus' histogram_quantile assumes); +Inf bounds count only at infinity."""
    below_bound, below_count = 0.0, 0.0
    for bound, count in sorted(buckets, key=lambda b: b[0]):
        if x < bound:
            if math.isinf(bound):
                return below_count
            return below_count + (count - below_count) * (x - below_bound) / (bound - below_bound)
        below_bound, below_count = bound, count
    return below_count


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """histogram_quantile over cumulative buckets (None without observations)."""
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            in_bucket = count - lower_count
            return lower_bound + (bound - lower_bound) * ((rank - lower_count) / in_bucket if in_bucket > 0 else 1.0)
        lower_bound, lower_count = bound, count
    return lower_bound


def survival(buckets: list[tuple[float, float]], x: float) -> float:
    """Share of observations slower than x."""
    total = max((c for _, c in buckets), default=0.0)
    if total <= 0:
        return 0.0
    return max(0.0, 1.0 - cumulative_at(buckets, x) / total)


def bucket_delta(now: tuple, before: tuple | None) -> list[tuple[float, float]] | None:
    """Per-bound increase of cumulative bucket counters; None when a counter went back (a restart)."""
    if before is None:
        return None
    previous = dict(before)
    out = []
    for bound, count in now:
        delta = count - previous.get(bound, 0.0)
        if delta < -1e-9:
            return None
        out.append((bound, max(0.0, delta)))
    return out


@dataclass(frozen=True)
class LatencyCusumState:
    statistic: float = 0.0
    last_canary: tuple = ()  # ((le, cumulative count), ...) raw counters
    last_baseline: tuple = ()

    def to_dict(self) -> dict:
        return {"statistic": self.statistic, "last_canary": [list(b) for b in self.last_canary],
                "last_baseline": [list(b) for b in self.last_baseline]}

    @classmethod
    def from_dict(cls, data: dict | None) -> "LatencyCusumState":
        if not data:
            return cls()

        def buckets(raw):
            return tuple((_bound(b), float(c)) for b, c in raw or ())

        return cls(float(data.get("statistic", 0.0)), buckets(data.get("last_canary")),
                   buckets(data.get("last_baseline")))


def _bound(value) -> float:
    return math.inf if value in ("+Inf", "Infinity", "inf") else float(value)


@dataclass(frozen=True)
class LatencySequentialResult:
    statistic: float
    threshold: float
    limit_s: float | None  # T: the stable's p95 the exceedances are counted against
    canary_slow: float  # canary traces slower than T since the previous evaluation
    canary_n: float
    baseline_slow: float
    baseline_n: float
    rho0: float | None
    rho1: float | None

    @property
    def alarm(self) -> bool:
        return self.statistic >= self.threshold


def latency_regression_cusum(state: LatencyCusumState, canary_totals: tuple, baseline_totals: tuple,
                             baseline_window: list[tuple[float, float]], *, advance_increase: float,
                             rollback_increase: float, threshold: float
                             ) -> tuple[LatencyCusumState, LatencySequentialResult]:
    """Fold the traces since the previous call into the latency CUSUM (see the comment above)."""
    statistic = state.statistic
    limit = quantile(baseline_window, 0.95) if baseline_window else None
    slow_c = n_c = slow_s = n_s = 0.0
    rho0 = rho1 = None
    d_canary = bucket_delta(canary_totals, state.last_canary or None)
    d_base = bucket_delta(baseline_totals, state.last_baseline or None)
    if limit and d_canary and d_base:
        at_limit = survival(baseline_window, limit)
        if at_limit > 0:
            rho0 = survival(baseline_window, limit / (1 + advance_increase)) / at_limit
            rho1 = survival(baseline_window, limit / (1 + rollback_increase)) / at_limit
        n_c, n_s = max(c for _, c in d_canary), max(c for _, c in d_base)
        slow_c = max(0.0, n_c - cumulative_at(d_canary, limit))
        slow_s = max(0.0, n_s - cumulative_at(d_base, limit))
        if rho0 and rho1 and rho1 > rho0 and n_c > 0 and n_s > 0:
            p0 = rho0 * n_c / (rho0 * n_c + n_s)
            p1 = rho1 * n_c / (rho1 * n_c + n_s)
            llr = slow_c * math.log(p1 / p0) + slow_s * math.log((1 - p1) / (1 - p0))
            statistic = max(0.0, statistic + llr)
    new_state = LatencyCusumState(statistic, tuple(canary_totals), tuple(baseline_totals))
    return new_state, LatencySequentialResult(statistic, threshold, limit, slow_c, n_c, slow_s, n_s, rho0, rho1)


@dataclass(frozen=True)
class FloorCusumState:
    statistics: tuple[float, ...] = ()
    last_canary: CounterTotals | None = None

    def to_dict(self) -> dict:
        last = self.last_canary
        return {"statistics": list(self.statistics),
                "last_canary": None if last is None else {"requests": last.requests, "failures": last.failures}}

    @classmethod
    def from_dict(cls, data: dict | None) -> "FloorCusumState":
        if not data:
            return cls()
        last = data.get("last_canary")
        return cls(tuple(float(s) for s in data.get("statistics", ())),
                   None if last is None else CounterTotals(float(last["requests"]), float(last["failures"])))


def floor_breach_cusum(state: FloorCusumState, canary: CounterTotals, *, floor: float, factors: tuple[float, ...],
                       threshold: float) -> tuple[FloorCusumState, SequentialResult]:
    """One CUSUM per factor: H0 failure rate = 1 - floor, H1 = factor * (1 - floor)."""
    statistics = state.statistics if len(state.statistics) == len(factors) else tuple(0.0 for _ in factors)
    added = 0.0
    p0 = 1.0 - floor
    last = state.last_canary
    if last is not None and 0 < p0 < 1:
        d_n, d_x = canary.requests - last.requests, canary.failures - last.failures
        if d_n > 0 and 0 <= d_x <= d_n:
            added = d_x
            updated = []
            for theta, s in zip(factors, statistics):
                p1 = min(theta * p0, 0.999999)
                llr = d_x * math.log(p1 / p0) + (d_n - d_x) * math.log((1 - p1) / (1 - p0))
                updated.append(max(0.0, s + llr))
            statistics = tuple(updated)
    best = max(range(len(factors)), key=lambda i: statistics[i]) if factors else None
    result = SequentialResult(statistic=statistics[best] if best is not None else 0.0, threshold=threshold,
                              factor=factors[best] if best is not None else None,
                              canary_failures_added=added, baseline_failures_added=0.0)
    return FloorCusumState(statistics, canary), result


# ------------------------------------------------------------------------------------------------------------
# Statistical power: could the canary's sample have shown the regression the policy guards?
# ------------------------------------------------------------------------------------------------------------
#
# Two-sample one-sided comparison of proportions (normal approximation).  H0: the canary's rate equals the
# stable's p_s; H1: it equals p_1 (the regression to detect).  With n_c canary and n_s stable observations the
# test at level alpha detects H1 with probability >= power when
#
#     z_(1-alpha) * sqrt(p_s (1 - p_s) (1/n_c + 1/n_s)) + z_power * sqrt(p_1 (1 - p_1) / n_c + p_s (1 - p_s) / n_s)
#         <= p_1 - p_s
#
# The left side falls as n_c grows; `required_sample` finds the least n_c by bisection (None: even an infinite
# canary sample would not do, because the stable's sample is too small or p_1 <= p_s).


def _power_margin(n_c: float, n_s: float, p_s: float, p_1: float, z_alpha: float, z_power: float) -> float:
    spread0 = math.sqrt(p_s * (1 - p_s) * (1 / n_c + 1 / n_s))
    spread1 = math.sqrt(p_1 * (1 - p_1) / n_c + p_s * (1 - p_s) / n_s)
    return (p_1 - p_s) - (z_alpha * spread0 + z_power * spread1)


def required_sample(*, p_s: float, p_1: float, n_s: float, alpha: float, power: float,
                    limit: float = 1e9) -> int | None:
    if not (0 <= p_s < p_1 <= 1) or n_s <= 0:
        return None
    z_alpha = float(scipy_stats.norm.isf(alpha))
    z_power = float(scipy_stats.norm.ppf(power))
    if _power_margin(limit, n_s, p_s, p_1, z_alpha, z_power) < 0:
        return None
    low, high = 1.0, limit
    if _power_margin(low, n_s, p_s, p_1, z_alpha, z_power) >= 0:
        return 1
    while high - low > 1:
        mid = math.floor((low + high) / 2)
        if _power_margin(mid, n_s, p_s, p_1, z_alpha, z_power) >= 0:
            high = mid
        else:
            low = mid
    return int(high)


def readable_p(p: float) -> str:
    """A p-value for people: 'p < 1e-16' rather than 'p=0', two significant digits otherwise."""
    if p < 1e-16:
        return "p < 1e-16"
    if p < 0.001:
        return f"p = {p:.1e}"
    return f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"
