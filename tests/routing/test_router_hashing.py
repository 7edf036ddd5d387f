"""The hashing properties schedulers rely on, proven on the pure Router (no network)."""

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollgate_client import GrayRule, NoRoutableVersionError, Router, RoutingTable, trace_point

STABLE, CANARY = "v3.3.0", "v3.3.1"
GRAY_RAMP = (0, 5, 10, 30, 50, 100)


def table_with(weight=0.0, **changes):
    base = RoutingTable(
        service="agent-infer",
        environment="prod",
        revision=1,
        stable_version=STABLE,
        canary_version=CANARY,
        canary_weight=weight,
    )
    return dataclasses.replace(base, **changes)


def sequential_ids(count=100_000):
    return [f"trace-{number:08d}" for number in range(count)]


def random_ids(count=100_000, seed=20250502):
    rng = random.Random(seed)
    return ["%032x" % rng.getrandbits(128) for _ in range(count)]


def canary_set(router, ids):
    return {trace_id for trace_id in ids if router.choose(trace_id) == CANARY}


trace_ids = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))
weights = st.floats(min_value=0, max_value=100)


@settings(database=None, deadline=None)
@given(trace_ids, weights)
def test_same_trace_id_gets_same_version_while_weight_stays(trace_id, weight):
    table = table_with(weight)
    first = Router(table).choose(trace_id)
    # A new revision that does not touch weight, versions or seed keeps every id where it was.
    republished = Router(dataclasses.replace(table, revision=table.revision + 1, blocked_versions=("v-old",)))
    assert all(Router(table).choose(trace_id) == first for _ in range(3))
    assert republished.choose(trace_id) == first


@settings(database=None, deadline=None)
@given(trace_ids, weights, weights)
def test_raising_the_weight_never_moves_an_id_back_to_stable(trace_id, weight_a, weight_b):
    lower, higher = sorted((weight_a, weight_b))
    if Router(table_with(lower)).choose(trace_id) == CANARY:
        assert Router(table_with(higher)).choose(trace_id) == CANARY


def test_gray_ramp_only_moves_ids_from_stable_to_canary():
    ids = random_ids(20_000)
    previous = set()
    for weight in GRAY_RAMP:
        current = canary_set(Router(table_with(weight)), ids)
        assert previous <= current, f"ids left the canary when the weight rose to {weight}"
        assert len(current) >= len(previous)
        previous = current
    assert previous == set(ids)


@pytest.mark.parametrize("id_source", [sequential_ids, random_ids])
@pytest.mark.parametrize("weight", [1, 5, 10, 12.5, 30, 50, 77.7, 99])
def test_measured_canary_share_is_within_half_a_percent_of_weight(id_source, weight):
    ids = id_source()
    share = len(canary_set(Router(table_with(weight)), ids)) / len(ids)
    assert abs(share - weight / 100) <= 0.005, f"share {share:.4%} for weight {weight}%"


def test_weight_zero_and_hundred_are_exact():
    ids = random_ids(5_000)
    assert canary_set(Router(table_with(0)), ids) == set()
    assert canary_set(Router(table_with(100)), ids) == set(ids)


@settings(database=None, deadline=None)
@given(trace_ids, weights)
def test_router_follows_the_documented_hash_rule(trace_id, weight):
    table = table_with(weight, hash_seed="agent-infer/prod")
    expected = CANARY if trace_point(trace_id, table.hash_seed) < weight / 100 else STABLE
    assert Router(table).choose(trace_id) == expected


def test_different_seeds_pick_independent_canary_sets():
    # Two services at 50 % should not both gray the same half of the traces: overlap ~25 %.
    ids = random_ids(40_000)
    first = canary_set(Router(table_with(50, hash_seed="agent-infer")), ids)
    second = canary_set(Router(table_with(50, hash_seed="agent-planner")), ids)
    overlap = len(first & second) / len(ids)
    assert 0.23 < overlap < 0.27


# --- gray match rules -------------------------------------------------------------------------

MATCHING_RULES = [
    ({"tenants": ["acme"]}, {"tenant": "acme"}),
    ({"trace_types": ["plan"]}, {"trace_type": "plan"}),
    ({"regions": ["cn-bj"]}, {"region": "cn-bj"}),
    ({"feature_flags": ["new-planner"]}, {"feature_flags": ["other", "new-planner"]}),
    ({"feature_flags": ["new-planner"]}, {"feature_flags": {"new-planner": True}}),
    ({"gray_tags": ["gray-phase-A"]}, {"headers": {"x-gray-tag": "gray-phase-A"}}),
    ({"gray_tags": ["gray-phase-A"]}, {"headers": {"X-Gray-Tag": "gray-phase-A"}}),
    ({"tenants": ["acme"], "regions": ["cn-bj"]}, {"tenant": "acme", "region": "cn-bj"}),
]


@pytest.mark.parametrize(("rule", "trace"), MATCHING_RULES)
def test_trace_matching_a_gray_rule_goes_to_canary_regardless_of_hash(rule, trace):
    router = Router(table_with(0, gray_rules=[GrayRule(**rule)]))
    assert [router.choose(trace_id, **trace) for trace_id in random_ids(500)] == [CANARY] * 500


NON_MATCHING = [
    ({"tenants": ["acme"]}, {"tenant": "globex"}),
    ({"tenants": ["acme"]}, {}),
    ({"trace_types": ["plan"]}, {"trace_type": "chat"}),
    ({"regions": ["cn-bj"]}, {"region": "cn-sh"}),
    ({"feature_flags": ["new-planner"]}, {"feature_flags": {"new-planner": False}}),
    ({"gray_tags": ["gray-phase-A"]}, {"headers": {"x-gray-tag": "gray-phase-B"}}),
    ({"gray_tags": ["gray-phase-A"]}, {"headers": {"x-other": "gray-phase-A"}}),
    # All fields of one rule must match: right tenant in the wrong region stays on the hash.
    ({"tenants": ["acme"], "regions": ["cn-bj"]}, {"tenant": "acme", "region": "cn-sh"}),
]


@pytest.mark.parametrize(("rule", "trace"), NON_MATCHING)
def test_trace_not_matching_a_gray_rule_is_routed_by_hash(rule, trace):
    with_rule = Router(table_with(30, gray_rules=[GrayRule(**rule)]))
    without_rule = Router(table_with(30))
    ids = random_ids(2_000)
    assert [with_rule.choose(i, **trace) for i in ids] == [without_rule.choose(i) for i in ids]


def test_any_one_of_several_rules_is_enough():
    router = Router(
        table_with(0, gray_rules=[GrayRule(tenants=["acme"]), GrayRule(gray_tags=["gray-phase-A"])])
    )
    assert router.choose("t-1", tenant="acme") == CANARY
    assert router.choose("t-2", headers={"x-gray-tag": "gray-phase-A"}) == CANARY
    assert router.choose("t-3", tenant="globex", headers={"x-gray-tag": "gray-phase-B"}) == STABLE


# --- blocked versions -------------------------------------------------------------------------


def test_blocked_canary_is_never_chosen_even_for_rule_matches():
    router = Router(table_with(50, gray_rules=[GrayRule(tenants=["acme"])], blocked_versions=[CANARY]))
    ids = random_ids(5_000)
    assert {router.choose(i) for i in ids} == {STABLE}
    assert router.choose("t-1", tenant="acme") == STABLE


def test_blocked_stable_sends_everything_to_the_open_canary():
    router = Router(table_with(5, blocked_versions=[STABLE]))
    assert {router.choose(i) for i in random_ids(5_000)} == {CANARY}


@pytest.mark.parametrize(
    "table",
    [
        table_with(30, blocked_versions=[STABLE, CANARY]),
        RoutingTable(service="agent-infer", environment="prod", stable_version=STABLE, blocked_versions=[STABLE]),
    ],
    ids=["both-blocked", "stable-blocked-no-canary"],
)
def test_when_every_version_is_blocked_choose_refuses_instead_of_guessing(table):
    with pytest.raises(NoRoutableVersionError, match="every routable version is blocked"):
        Router(table).choose("t-1", tenant="acme")


@settings(database=None, deadline=None)
@given(
    trace_ids,
    weights,
    st.lists(st.sampled_from([STABLE, CANARY, "v-old"]), max_size=3),
    st.sampled_from([None, "acme"]),
)
def test_a_blocked_version_is_never_chosen(trace_id, weight, blocked, tenant):
    router = Router(table_with(weight, blocked_versions=blocked, gray_rules=[GrayRule(tenants=["acme"])]))
    try:
        chosen = router.choose(trace_id, tenant=tenant)
    except NoRoutableVersionError:
        assert {STABLE, CANARY} <= set(blocked)
    else:
        assert chosen not in blocked


@pytest.mark.parametrize("weight", [0, 30, 100])
def test_trace_id_that_is_not_text_is_refused_at_any_weight(weight):
    with pytest.raises(TypeError, match="trace_id: must be str or bytes, got int"):
        Router(table_with(weight)).choose(12345)
