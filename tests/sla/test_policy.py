"""SLA policy defaults, validation and storage round trip."""

import json

import pytest

from sla.policy import DEFAULT_POLICY, PolicyInvalid, SlaPolicy, parse_duration_s


def test_defaults_follow_the_design_document():
    p = DEFAULT_POLICY
    assert (p.advance_min_success_rate, p.advance_max_p95_increase) == (0.995, 0.10)
    assert (p.pause_below_success_rate, p.rollback_p95_increase) == (0.99, 0.20)
    assert (p.block_failed_traces, p.review_callback_failure_rate) == (50, 0.02)
    assert (p.healthy_after_s, p.first_snapshot_within_s, p.evaluation_interval_s) == (3600, 1800, 600)


def test_policy_round_trips_through_json():
    policy = SlaPolicy(evaluation_interval_s=5, healthy_after_s=30, sequential_regression_factors=(2.0, 8.0))
    assert SlaPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_durations_accept_seconds_and_units():
    assert parse_duration_s("10m") == 600 and parse_duration_s("1h") == 3600 and parse_duration_s(2.5) == 2.5
    assert SlaPolicy.from_dict({"evaluation_interval_s": "45s"}).evaluation_interval_s == 45


@pytest.mark.parametrize("field, value, words", [
    ("evaluation_interval_s", 0, "seconds > 0"),
    ("advance_min_success_rate", 1.5, "fraction"),
    ("pause_below_success_rate", 0.999, "must not exceed advance_min_success_rate"),
    ("rollback_p95_increase", 0.05, "advance_max_p95_increase"),
    ("nodata_status", "pass", "one of watching"),
    ("min_sample_size", 0, "whole number"),
    ("sequential_regression_factors", [0.5], "ratios > 1"),
    ("floor_sequential_factors", [], "ratios > 1"),
    ("floor_sequential_factors", "1.5", "ratios > 1"),
    ("power", 0.3, "probability from 0.5"),
    ("power", 1, "probability from 0.5"),
    ("power", True, "probability from 0.5"),
    ("max_scrape_gap_s", -5, "seconds > 0"),
    ("sequential_action", "block", "one of rollback, pause"),
    ("evaluation_window_s", "ten minutes", "duration"),
    ("no_such_field", 1, "unknown policy field"),
])
def test_invalid_values_name_the_field_and_the_rule(field, value, words):
    with pytest.raises(PolicyInvalid) as caught:
        SlaPolicy.from_dict({field: value})
    assert field in caught.value.errors and words in caught.value.errors[field]


def test_overrides_are_validated_like_stored_policies():
    assert DEFAULT_POLICY.with_overrides({"block_failed_traces": 10}).block_failed_traces == 10
    with pytest.raises(PolicyInvalid, match="block_failed_traces"):
        DEFAULT_POLICY.with_overrides({"block_failed_traces": -1})
