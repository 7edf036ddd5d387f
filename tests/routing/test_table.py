import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollgate_client import GrayRule, RoutingTable, RoutingTableError

REPO_ROOT = Path(__file__).resolve().parents[2]

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=12)
name_lists = st.lists(names, max_size=3)


@st.composite
def routing_tables(draw):
    stable = "v" + draw(names)
    canary = draw(st.one_of(st.none(), names.map(lambda n: "c" + n)))
    rules = []
    if canary is not None:
        for _ in range(draw(st.integers(0, 3))):
            fields = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "tenants": name_lists,
                        "trace_types": name_lists,
                        "regions": name_lists,
                        "feature_flags": name_lists,
                        "gray_tags": name_lists,
                    },
                )
            )
            if any(fields.values()):
                rules.append(GrayRule(**fields))
    return RoutingTable(
        service=draw(names),
        environment=draw(st.sampled_from(["dev", "test", "staging", "prod"])),
        revision=draw(st.integers(0, 10**9)),
        stable_version=stable,
        canary_version=canary,
        canary_weight=0.0 if canary is None else draw(st.floats(0, 100)),
        gray_rules=rules,
        blocked_versions=draw(st.lists(st.sampled_from([stable, canary or stable, "v-old"]), max_size=2)),
        hash_seed=draw(st.one_of(st.just(""), names)),
    )


@settings(database=None, deadline=None)
@given(routing_tables())
def test_table_survives_a_json_round_trip_with_the_same_etag(table):
    again = RoutingTable.from_json(table.to_json())
    assert again == table
    assert again.etag == table.etag
    assert again.to_json() == table.to_json()


def test_the_json_shape_is_the_documented_one(gray_table):
    data = json.loads(gray_table.to_json())
    assert data == {
        "schema": 1,
        "service": "agent-infer",
        "environment": "prod",
        "revision": 1,
        "stable_version": "v3.3.0",
        "canary_version": "v3.3.1",
        "canary_weight": 30.0,
        "hash_seed": "agent-infer",
        "gray_rules": [],
        "blocked_versions": [],
    }


def test_etag_changes_with_any_routing_change_and_not_with_rule_order(gray_table):
    heavier = RoutingTable.from_dict({**gray_table.to_dict(), "canary_weight": 30.5})
    assert heavier.etag != gray_table.etag
    first = RoutingTable.from_dict({**gray_table.to_dict(), "gray_rules": [{"tenants": ["b", "a"]}]})
    second = RoutingTable.from_dict({**gray_table.to_dict(), "gray_rules": [{"tenants": ["a", "b", "a"]}]})
    assert first.etag == second.etag
    assert first.etag.startswith('"1-') and first.etag.endswith('"')


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"canary_weight": 120}, "canary_weight: must be from 0 to 100, got 120"),
        ({"canary_weight": -1}, "canary_weight: must be from 0 to 100"),
        ({"canary_weight": True}, "canary_weight: must be a number"),
        ({"canary_weight": "30"}, "canary_weight: must be a number"),
        ({"canary_weight": float("nan")}, "canary_weight: must be a number"),
        ({"canary_version": "v3.3.0"}, "canary_version: must differ from stable_version"),
        ({"canary_version": None}, "canary_version: is null, so canary_weight must be 0"),
        ({"stable_version": ""}, "stable_version: must be a non-empty string"),
        ({"gray_rules": [{}]}, "gray_rules[0]: must set at least one of tenants"),
        ({"gray_rules": [{"tenant": ["acme"]}]}, "gray_rules[0]: unknown field(s) tenant"),
        ({"gray_rules": [{"tenants": "acme"}]}, "gray_rules[0].tenants: must be a list of strings"),
        ({"gray_rules": [{"regions": ["cn-bj", ""]}]}, "gray_rules[0].regions[1]: must be a non-empty string"),
        ({"blocked_versions": [3]}, "blocked_versions[0]: must be a non-empty string"),
        ({"revision": -1}, "revision: must be an integer >= 0"),
        ({"hash_seed": "x" * 65}, "hash_seed: must be at most 64 bytes"),
        ({"schema": 2}, "schema: this client understands schema 1, got 2"),
        ({"weight": 5}, "table: unknown field(s) weight"),
    ],
)
def test_malformed_table_is_refused_naming_field_and_rule(gray_table, change, message):
    with pytest.raises(RoutingTableError) as error:
        RoutingTable.from_dict({**gray_table.to_dict(), **change})
    assert message in str(error.value)


def test_missing_required_field_and_bad_json_are_named(gray_table):
    data = gray_table.to_dict()
    del data["stable_version"]
    with pytest.raises(RoutingTableError, match="stable_version: is required"):
        RoutingTable.from_dict(data)
    with pytest.raises(RoutingTableError, match="table: not valid JSON"):
        RoutingTable.from_json(b"{not json")
    with pytest.raises(RoutingTableError, match="table: must be a JSON object"):
        RoutingTable.from_json(b"[]")


def test_blue_green_cut_over_and_switch_back_are_one_table_change_each(gray_table):
    with_rules = RoutingTable.from_dict({**gray_table.to_dict(), "gray_rules": [{"tenants": ["acme"]}]})
    cut = with_rules.cut_over()
    assert (cut.canary_weight, cut.canary_version, cut.stable_version) == (100.0, "v3.3.1", "v3.3.0")
    back = cut.switch_back()
    assert (back.canary_weight, back.gray_rules, back.canary_version) == (0.0, (), "v3.3.1")
    no_canary = RoutingTable(service="s", environment="prod", stable_version="v1")
    with pytest.raises(RoutingTableError, match="cannot cut over, no canary version"):
        no_canary.cut_over()


def test_client_package_imports_without_django():
    code = "import sys, rollgate_client; assert 'django' not in sys.modules; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.stdout.strip() == "ok", result.stderr
