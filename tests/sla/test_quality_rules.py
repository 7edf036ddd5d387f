"""The LLM quality rules on chosen readings (sla/quality.py): when each fires, when it only reports, and the
policy fields that set them (the end-to-end run with a real Prometheus is tests/sla/test_quality_gate.py)."""
from datetime import datetime, timezone

import pytest

from sla.catalog import Metric
from sla.findings import Effect, GrayRelease, ReleaseReadings
from sla.policy import DEFAULT_POLICY, PolicyInvalid, SlaPolicy
from sla.prometheus import Reading
from sla.quality import quality_rules

AT = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
RELEASE = GrayRelease("agent-infer", "prod", "v2.1.0", "v2.0.0")


def readings(*, mean=None, sd=0.1, n=0, calls=None, tool_errors=0, cost=None, ok=1000, steps=None, ttft=None,
             cost_unknown=None, cost_sd=None):
    values = {Metric.SUCCESS_COUNT: ok}
    if cost_unknown is not None:
        values[Metric.COST_UNKNOWN_COUNT] = cost_unknown
    if mean is not None:
        values.update({Metric.EVAL_SCORE_MEAN: mean, Metric.EVAL_SCORE_SQUARES_MEAN: mean * mean + sd * sd,
                       Metric.EVAL_SCORE_COUNT: n})
    if calls is not None:
        values.update({Metric.TOOL_CALL_COUNT: calls, Metric.TOOL_ERROR_COUNT: tool_errors,
                       Metric.TOOL_ERROR_RATE: tool_errors / calls if calls else None})
    if cost is not None:
        values[Metric.COST_PER_SUCCESS] = cost
    if cost_sd is not None:  # the exporter's agent_cost_squared_total: the per-task spread
        values[Metric.COST_SQUARES_PER_SUCCESS] = cost * cost + cost_sd * cost_sd
    if steps is not None:
        values[Metric.STEPS_P95] = steps
    if ttft is not None:
        values[Metric.TTFT_P95] = ttft
    return ReleaseReadings(at=AT, metrics={m: Reading(v, f"q_{m.value}", 600, AT) for m, v in values.items()})


def by_rule(findings):
    return {f.rule: f for f in findings}


@pytest.mark.parametrize("canary_mean, n, sd, fires", [
    (0.74, 300, 0.1, True),     # -0.08 over 300 scored traces: pause
    (0.86, 150, 0.05, True),    # -0.05 exactly at the threshold, tight scores: pause
    (0.88, 2000, 0.1, False),   # -0.03: significant but smaller than the 0.05 the policy guards
    (0.84, 120, 0.45, False),   # -0.07 but the scores are too noisy to tell (p > stop_significance)
    (0.70, 60, 0.1, False),     # -0.21 with 60 scored traces: below min_quality_sample, not judged
])
def test_eval_score_drop_pauses_only_when_large_enough_and_significant(canary_mean, n, sd, fires):
    stable_mean = {0.74: 0.82, 0.86: 0.91, 0.88: 0.91, 0.84: 0.91, 0.70: 0.91}[canary_mean]
    found = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(mean=canary_mean, n=n, sd=sd),
                                  readings(mean=stable_mean, n=5000, sd=sd)))
    rule = found["eval_score_regression"]
    assert (rule.effect is Effect.PAUSE) == fires, rule.text
    if fires:
        assert "HTTP success does not show it" in rule.text and rule.headline.startswith("v2.1.0's answers got worse")
    if n < DEFAULT_POLICY.min_quality_sample:
        assert "not judged yet" in rule.text


def test_tool_error_regression_rolls_back_and_a_small_rise_does_not():
    stable = readings(calls=6000, tool_errors=120)  # 2 %
    worse = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(calls=900, tool_errors=90), stable))
    assert worse["tool_error_regression"].effect is Effect.ROLLBACK  # 10 % vs 2 %
    assert "canary traffic cut" in worse["tool_error_regression"].text
    slight = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(calls=900, tool_errors=36), stable))
    assert slight["tool_error_regression"].effect is None  # 4 %: below 2 % + 5 points


@pytest.mark.parametrize("ratio, fires", [(1.5, True), (1.31, True), (1.2, False), (0.7, False)])
def test_cost_per_successful_task_over_thirty_percent_asks_a_person(ratio, fires):
    found = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(cost=0.004 * ratio), readings(cost=0.004)))
    assert (found["cost_per_success"].effect is Effect.MANUAL_REVIEW) == fires


@pytest.mark.parametrize("ratio, cv, ok, effect", [
    (1.5, 2.0, 120, Effect.WATCH),            # heavy-tailed costs, 120 tasks: +50 % is within noise, the ramp holds
    (1.5, 2.0, 5000, Effect.MANUAL_REVIEW),   # the same +50 % over 5 000 tasks: a person decides
    (1.4, 0.2, 100, Effect.MANUAL_REVIEW),    # tight costs: 100 tasks are enough to show +40 %
    (1.35, 0.5, 150, Effect.WATCH),           # +35 % with a wider spread: not yet beyond +30 % by evidence
    (1.2, 2.0, 50000, None),                  # below the +30 % limit, however many tasks
])
def test_cost_above_the_limit_asks_a_person_only_beyond_noise(ratio, cv, ok, effect):
    """With the spread of trace costs exported, a sticky manual review needs evidence, not one pricey batch."""
    stable_cost = 0.004
    canary = readings(cost=stable_cost * ratio, cost_sd=stable_cost * ratio * cv, ok=ok)
    rule = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, canary,
                                 readings(cost=stable_cost, cost_sd=stable_cost * cv, ok=5000)))["cost_per_success"]
    assert rule.effect is effect, rule.text
    assert "Welch z on means" in rule.text
    if effect is Effect.WATCH:
        assert "too few to tell from noise" in rule.text and rule.headline is None
    if effect is Effect.MANUAL_REVIEW:
        assert rule.headline == f"v2.1.0 costs {ratio:.2f}x v2.0.0 per successful task"


@pytest.mark.parametrize("unknown, ok, effect", [
    (700, 1000, Effect.MANUAL_REVIEW),  # 70 % of its traces name a model without a price: never counted as cheap
    (420, 800, Effect.MANUAL_REVIEW),   # 52.5 %: still most
    (300, 1000, None),                  # a minority unpriced: judged on the priced ones (cheaper), and said so
])
def test_a_canary_whose_cost_is_mostly_unknown_is_not_passed_as_cheap(unknown, ok, effect):
    found = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(cost=0.0011, ok=ok, cost_unknown=unknown),
                                  readings(cost=0.004, cost_unknown=0)))
    rule = found["cost_per_success"]
    assert rule.effect is effect, rule.text
    if effect:
        assert rule.text.startswith(f"cost unknown for {unknown} of v2.1.0's traces") and "ROLLGATE_MODEL_PRICES" in rule.text
        assert rule.headline == "v2.1.0's cost is unknown for most of its traces (its model has no price in " \
                                "ROLLGATE_MODEL_PRICES)"
    else:
        assert f"{unknown} traces of unknown cost not counted" in rule.text


def test_cost_unknown_everywhere_is_not_compared_and_no_cost_series_at_all_is_no_finding():
    # Every trace unpriced (a canary on a new model) while the stable's cost is known: a person decides.
    alone = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(cost_unknown=640, ok=600),
                                  readings(cost=0.004, cost_unknown=0)))
    assert alone["cost_per_success"].effect is Effect.MANUAL_REVIEW
    # Both sides unpriced (a team that sends model names but keeps no price table): nothing to compare.
    both = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(cost_unknown=640, ok=600),
                                 readings(cost_unknown=9000, ok=9000)))
    assert both["cost_per_success"].effect is None and "not compared" in both["cost_per_success"].text
    # Too few successful canary traces yet.
    young = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(cost_unknown=30, ok=30),
                                  readings(cost=0.004, cost_unknown=0)))
    assert young["cost_per_success"].effect is None and "not judged yet" in young["cost_per_success"].text
    assert "cost_per_success" not in by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(), readings()))


def test_steps_and_ttft_are_shown_and_never_decide():
    found = by_rule(quality_rules(DEFAULT_POLICY, RELEASE, readings(steps=14.0, ttft=2.4),
                                  readings(steps=4.0, ttft=0.3)))
    assert found["steps_p95"].effect is None and found["steps_p95"].measured == 14.0
    assert found["ttft_p95"].effect is None and found["ttft_p95"].measured == 2400.0
    assert "time to first token p95 2,400 ms vs v2.0.0's 300 ms" == found["ttft_p95"].text


def test_services_without_quality_series_get_no_quality_findings():
    assert quality_rules(DEFAULT_POLICY, RELEASE, readings(), readings()) == []


def test_policy_sets_the_quality_thresholds_and_refuses_bad_ones():
    strict = SlaPolicy.from_dict({"pause_eval_score_drop": 0.02, "min_quality_sample": 50})
    found = by_rule(quality_rules(strict, RELEASE, readings(mean=0.88, n=2000), readings(mean=0.91, n=5000)))
    assert found["eval_score_regression"].effect is Effect.PAUSE  # -0.03 now pauses
    with pytest.raises(PolicyInvalid) as bad:
        SlaPolicy.from_dict({"pause_eval_score_drop": 1.5, "review_cost_increase": -1, "min_quality_sample": 0})
    assert set(bad.value.errors) == {"pause_eval_score_drop", "review_cost_increase", "min_quality_sample"}
