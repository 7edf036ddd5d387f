"""LLM quality rules: canary vs stable on what HTTP success cannot see (sla.verdict.evaluate calls them).

An agent can answer every request with 200 while its answers get worse, its tool calls fail more or it costs more
per task.  When the trace results carry the optional quality fields (rollgate_client.results.QUALITY_FIELDS), the
catalog's quality metrics (sla.catalog.QUALITY_METRICS) compare the canary with the stable release over the
evaluation window:

===================================  ==============  ================================================================
rule                                 effect          fires when (defaults in sla/policy.py)
===================================  ==============  ================================================================
``eval_score_regression``            pause           mean eval score lower by >= ``pause_eval_score_drop`` (0.05)
                                                     and significantly lower (one-sided Welch z, ``stop_significance``)
``tool_error_regression``            rollback        tool error rate higher by >= ``rollback_tool_error_increase``
                                                     (5 points) and significantly higher (two-proportion z;
                                                     Fisher's exact test with < 10 errors expected on a side)
``cost_per_success``                 manual_review   cost per successful task > stable's x (1 + ``review_cost_increase``)
                                                     and significantly so (one-sided Welch z on the per-task cost,
                                                     ``stop_significance``; above the limit without that evidence
                                                     the ramp only holds),
                                                     or the cost of most canary traces unknown (a model without a
                                                     price in ROLLGATE_MODEL_PRICES, no cost sent) while stable's is
                                                     known: unverifiable is never counted as cheap
``steps_p95``, ``ttft_p95``          (shown)         p95 of agent loop iterations and of time to first token, canary
                                                     and stable, for people; no action
===================================  ==============  ================================================================

Each comparison needs ``min_quality_sample`` scored traces (tool calls, successful traces) on both sides; below
that, or without the series at all, the rule says why it did not judge and never fires.  Pure: no I/O.
"""
from __future__ import annotations

from sla import explain
from sla.catalog import Metric
from sla.findings import Effect, Finding, GrayRelease, ReleaseReadings
from sla.policy import SlaPolicy
from sla.stats import failure_rate_worse, mean_above_scaled, mean_lower


def _values(readings: ReleaseReadings, *metrics: Metric):
    return tuple(readings.value(m) for m in metrics)


def eval_score_rule(policy: SlaPolicy, release: GrayRelease, canary: ReleaseReadings,
                    baseline: ReleaseReadings) -> Finding | None:
    mean_c, squares_c, n_c = _values(canary, Metric.EVAL_SCORE_MEAN, Metric.EVAL_SCORE_SQUARES_MEAN,
                                     Metric.EVAL_SCORE_COUNT)
    mean_s, squares_s, n_s = _values(baseline, Metric.EVAL_SCORE_MEAN, Metric.EVAL_SCORE_SQUARES_MEAN,
                                     Metric.EVAL_SCORE_COUNT)
    if mean_c is None or mean_s is None or squares_c is None or squares_s is None:
        return None  # this service sends no eval scores (or the stable does not): nothing to compare
    query = canary.query(Metric.EVAL_SCORE_MEAN)
    limit = mean_s - policy.pause_eval_score_drop
    if (n_c or 0) < policy.min_quality_sample or (n_s or 0) < policy.min_quality_sample:
        return Finding("eval_score_regression", None,
                       f"mean eval score {mean_c:.3f} ({explain.count(n_c)} scored traces) vs "
                       f"{release.baseline_version}'s {mean_s:.3f} ({explain.count(n_s)}): fewer than "
                       f"{policy.min_quality_sample} scored traces on a side, not judged yet",
                       measured=mean_c, threshold=limit, query=query)
    test = mean_lower(mean_c, squares_c - mean_c * mean_c, n_c, mean_s, squares_s - mean_s * mean_s, n_s)
    drop = mean_s - mean_c
    fired = drop >= policy.pause_eval_score_drop and test.significant(policy.stop_significance)
    comparison = (f"mean eval score {mean_c:.3f} vs {release.baseline_version}'s {mean_s:.3f} "
                  f"({'-' if drop >= 0 else '+'}{abs(drop):.3f}; pause at -{policy.pause_eval_score_drop:g}; "
                  f"{test.describe()})")
    return Finding("eval_score_regression", Effect.PAUSE if fired else None,
                   ("answer quality regressed: " + comparison + "; HTTP success does not show it") if fired
                   else comparison,
                   measured=mean_c, threshold=limit, query=query,
                   headline=(f"{release.version}'s answers got worse: mean eval score {mean_c:.2f} vs "
                             f"{release.baseline_version}'s {mean_s:.2f} over {explain.count(n_c)} scored traces "
                             f"({test.describe()}), although its requests still succeed") if fired else None)


def tool_error_rule(policy: SlaPolicy, release: GrayRelease, canary: ReleaseReadings,
                    baseline: ReleaseReadings) -> Finding | None:
    calls_c, errors_c = _values(canary, Metric.TOOL_CALL_COUNT, Metric.TOOL_ERROR_COUNT)
    calls_s, errors_s = _values(baseline, Metric.TOOL_CALL_COUNT, Metric.TOOL_ERROR_COUNT)
    if calls_c is None or calls_s is None or errors_c is None or errors_s is None:
        return None
    query = canary.query(Metric.TOOL_ERROR_RATE)
    if calls_c < policy.min_quality_sample or calls_s < policy.min_quality_sample:
        return Finding("tool_error_regression", None,
                       f"{explain.count(calls_c)} canary and {explain.count(calls_s)} stable tool calls: fewer than "
                       f"{policy.min_quality_sample} on a side, not judged yet", query=query, unit=explain.RATIO)
    rate_c, rate_s = errors_c / calls_c, errors_s / calls_s
    limit = rate_s + policy.rollback_tool_error_increase
    test = failure_rate_worse(errors_c, calls_c, errors_s, calls_s)
    fired = rate_c >= limit and test.significant(policy.stop_significance)
    comparison = (f"tool error rate {explain.pct(rate_c)} of {explain.count(calls_c)} calls vs "
                  f"{release.baseline_version}'s {explain.pct(rate_s)} (rollback at {explain.pct(limit)}; "
                  f"{test.describe()})")
    return Finding("tool_error_regression", Effect.ROLLBACK if fired else None,
                   comparison + (": canary traffic cut, roll back" if fired else ""),
                   measured=rate_c, threshold=limit, query=query, unit=explain.RATIO,
                   headline=(f"{release.version}'s tool calls failed {explain.pct(rate_c)} of the time vs "
                             f"{explain.pct(rate_s)} on {release.baseline_version}") if fired else None)


# More traces of unknown cost than this share of the successful ones: the canary's cost cannot be verified.
COST_UNKNOWN_MAX_SHARE = 0.5


def cost_rule(policy: SlaPolicy, release: GrayRelease, canary: ReleaseReadings,
              baseline: ReleaseReadings) -> Finding | None:
    cost_c, ok_c, unknown_c = _values(canary, Metric.COST_PER_SUCCESS, Metric.SUCCESS_COUNT, Metric.COST_UNKNOWN_COUNT)
    cost_s, ok_s, unknown_s = _values(baseline, Metric.COST_PER_SUCCESS, Metric.SUCCESS_COUNT,
                                      Metric.COST_UNKNOWN_COUNT)
    if cost_c is None and not unknown_c:
        return None  # this service reports no cost and names no model: nothing to compare
    query = canary.query(Metric.COST_PER_SUCCESS) or canary.query(Metric.COST_UNKNOWN_COUNT)
    if (ok_c or 0) < policy.min_quality_sample:
        return Finding("cost_per_success", None,
                       f"{explain.count(ok_c)} successful canary traces: fewer than {policy.min_quality_sample}, "
                       f"cost per successful task not judged yet", measured=cost_c, query=query)

    def mostly_unknown(unknown, ok) -> bool:
        return bool(ok) and (unknown or 0) / ok > COST_UNKNOWN_MAX_SHARE

    if mostly_unknown(unknown_c, ok_c):
        # Never count what cannot be verified as cheap: with the stable's cost known, a person decides.
        counted = f"{explain.count(unknown_c)} of {release.version}'s traces ({explain.count(ok_c)} successful)"
        if cost_s is None or mostly_unknown(unknown_s, ok_s):
            return Finding("cost_per_success", None,
                           f"cost unknown for {counted} and for most of {release.baseline_version}'s: their model "
                           f"has no price in ROLLGATE_MODEL_PRICES and no cost was sent; not compared", query=query)
        return Finding("cost_per_success", Effect.MANUAL_REVIEW,
                       f"cost unknown for {counted}: their model has no price in ROLLGATE_MODEL_PRICES and no cost "
                       f"was sent, so it cannot be shown to stay within +{policy.review_cost_increase * 100:g} % of "
                       f"{release.baseline_version}'s {cost_s:.4g} per successful task; a person decides",
                       query=query,
                       headline=(f"{release.version}'s cost is unknown for most of its traces (its model has no "
                                 f"price in ROLLGATE_MODEL_PRICES)"))
    if cost_c is None or cost_s is None:
        return None
    limit = cost_s * (1 + policy.review_cost_increase)
    if (ok_s or 0) < policy.min_quality_sample:
        return Finding("cost_per_success", None,
                       f"cost per successful task {cost_c:.4g} vs {cost_s:.4g}: fewer than "
                       f"{policy.min_quality_sample} successful traces on a side, not judged yet",
                       measured=cost_c, threshold=limit, query=query)
    over = cost_c > limit
    test = _cost_test(policy, canary, baseline, cost_c, ok_c, cost_s, ok_s)
    # A manual review is sticky: the cost must be above the limit beyond noise, not one pricey batch of 40 tasks.
    # Without the spread (an exporter that sends no agent_cost_squared_total) the point comparison decides.
    fired = over and (test is None or test.significant(policy.stop_significance))
    unpriced = f"; {explain.count(unknown_c)} traces of unknown cost not counted" if unknown_c else ""
    evidence = f"; {test.describe()}" if test is not None else "; no cost spread exported, not tested"
    comparison = (f"cost per successful task {cost_c:.4g} vs {release.baseline_version}'s {cost_s:.4g} "
                  f"({'>' if over else '<='} +{policy.review_cost_increase * 100:g} % = {limit:.4g}{unpriced}"
                  f"{evidence})")
    if fired:
        text = comparison + "; a person decides whether the quality is worth it"
    elif over:
        text = (comparison + f": above the limit, but {explain.count(ok_c)} successful tasks are too few to tell "
                f"from noise ({policy.stop_significance:g} needed for a manual review); the ramp does not advance "
                f"meanwhile")
    else:
        text = comparison
    return Finding("cost_per_success", Effect.MANUAL_REVIEW if fired else (Effect.WATCH if over else None), text,
                   measured=cost_c, threshold=limit, query=query,
                   headline=(f"{release.version} costs {cost_c / cost_s:.2f}x {release.baseline_version} per "
                             f"successful task") if fired else None)


def _cost_test(policy: SlaPolicy, canary: ReleaseReadings, baseline: ReleaseReadings, cost_c: float, ok_c: float,
               cost_s: float, ok_s: float):
    """Welch z: is the canary's mean cost per successful task above stable's x (1 + review_cost_increase)?
    The per-task spread comes from the sum of squared trace costs (None when it is not exported)."""
    squares_c = canary.value(Metric.COST_SQUARES_PER_SUCCESS)
    squares_s = baseline.value(Metric.COST_SQUARES_PER_SUCCESS)
    if squares_c is None or squares_s is None:
        return None
    return mean_above_scaled(cost_c, squares_c - cost_c * cost_c, ok_c, 1 + policy.review_cost_increase,
                             cost_s, squares_s - cost_s * cost_s, ok_s)


def _shown(rule: str, label: str, metric: Metric, canary, baseline, release, *, scale: float, unit: str):
    value, stable = canary.value(metric), baseline.value(metric)
    if value is None:
        return None
    text = (f"{label} {explain.show(value * scale, unit)}" +
            (f" vs {release.baseline_version}'s {explain.show(stable * scale, unit)}" if stable is not None else ""))
    return Finding(rule, None, text, measured=value * scale,
                   threshold=None if stable is None else stable * scale, query=canary.query(metric), unit=unit)


def quality_rules(policy: SlaPolicy, release: GrayRelease, canary: ReleaseReadings,
                  baseline: ReleaseReadings) -> list[Finding]:
    found = [eval_score_rule(policy, release, canary, baseline), tool_error_rule(policy, release, canary, baseline),
             cost_rule(policy, release, canary, baseline),
             _shown("steps_p95", "agent steps p95", Metric.STEPS_P95, canary, baseline, release, scale=1.0,
                    unit=explain.STAT),
             _shown("ttft_p95", "time to first token p95", Metric.TTFT_P95, canary, baseline, release, scale=1000.0,
                    unit=explain.MS)]
    return [f for f in found if f is not None]
