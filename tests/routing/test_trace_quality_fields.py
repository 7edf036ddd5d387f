"""LLM quality fields of trace results: validation by index naming the field and the rule, the aggregation into
the Prometheus exposition (the real scrape and the gate's queries: tests/sla/test_quality_gate.py)."""
import pytest

from rollgate_client.results import TraceResult, batch_response, validate_batch
from routing import metrics

pytestmark = pytest.mark.django_db  # the suite's app-role set-up needs the test database


def item(number=0, **changes):
    base = {"trace_id": f"t-{number}", "agent_id": "agent-1", "version": "v2.0.0", "ok": True, "latency_ms": 420.0,
            "tokens": 1200}
    base.update(changes)
    return base


@pytest.mark.parametrize("changes, message", [
    ({"eval_score": 1.2}, "items[0].eval_score: must be a number from 0 to 1, got 1.2"),
    ({"eval_score": "good"}, "items[0].eval_score: must be a number from 0 to 1, got 'good'"),
    ({"tool_calls": 2.5}, "items[0].tool_calls: must be a whole number from 0 to 1000000, got 2.5"),
    ({"tool_calls": 2, "tool_errors": 3}, "items[0].tool_errors: must not exceed tool_calls (2), got 3"),
    ({"tool_errors": 1}, "items[0].tool_errors: needs tool_calls (the error rate is errors / calls)"),
    ({"steps": -1}, "items[0].steps: must be a whole number from 0 to 1000000, got -1"),
    ({"ttft_ms": True}, "items[0].ttft_ms: must be a number from 0 to 86400000, got True"),
    ({"tokens_out": 1e12}, "items[0].tokens_out: must be a whole number from 0 to 1000000000, got 1000000000000.0"),
    ({"cost": float("nan")}, "items[0].cost: must be a number from 0 to 1000000, got nan"),
    ({"eval": 0.9}, "items[0]: unknown field(s) eval;"),
])
def test_each_quality_field_rule_is_named_and_the_rest_of_the_batch_is_kept(changes, message):
    valid, errors = validate_batch([item(0, **changes), item(1, eval_score=0.9)])
    assert [r.trace_id for r in valid] == ["t-1"]
    assert any(m.startswith(message) for m in errors[0]), errors[0]
    assert batch_response(valid, errors)["rejected"] == 1


def test_quality_fields_are_optional_and_null_means_not_measured():
    valid, errors = validate_batch([item(0), item(1, eval_score=None, cost=None),
                                    item(2, eval_score=0, tool_calls=0, tool_errors=0, cost=0.0)])
    assert not errors and [r.eval_score for r in valid] == [None, None, 0.0]
    assert "eval_score" not in valid[0].to_dict() and valid[2].to_dict()["tool_calls"] == 0


def _exposition(results):
    ints, sums = metrics.aggregate("agent-infer", "prod", results)
    raw = {**{k: str(v) for k, v in ints.items()}, **{k: repr(v) for k, v in sums.items()}}
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.render(raw).splitlines() if line and not line.startswith("#")}


def test_quality_series_sum_per_version_and_stay_absent_for_versions_without_them():
    def result(i, version, **fields):
        return TraceResult(trace_id=f"t{i}", agent_id="a", version=version, ok=True, latency_ms=300.0, tokens=10,
                           **fields)
    batch = [result(i, "v2.0.0", eval_score=(0.6, 0.9, 0.75)[i % 3], tool_calls=4, tool_errors=i % 2, steps=2 + i,
                    ttft_ms=120.0 * (i + 1), tokens_in=700, tokens_out=50 + i, cost=0.0025) for i in range(6)]
    batch += [result(9, "v1.9.0")]  # an older agent that sends none of the fields
    text = _exposition(batch)
    lbl = '{service="agent-infer",env="prod",version="v2.0.0"}'
    assert text[f"agent_eval_score_count{lbl}"] == 6 and text[f"agent_eval_score_sum{lbl}"] == pytest.approx(4.5)
    assert text[f"agent_eval_score_squared_total{lbl}"] == pytest.approx(2 * (0.36 + 0.81 + 0.5625))
    assert (text[f"agent_tool_calls_total{lbl}"], text[f"agent_tool_errors_total{lbl}"]) == (24, 3)
    assert (text[f"agent_tokens_in_total{lbl}"], text[f"agent_tokens_out_total{lbl}"]) == (4200, 315)
    assert text[f"agent_cost_total{lbl}"] == pytest.approx(0.015)
    assert text[f"agent_cost_squared_total{lbl}"] == pytest.approx(6 * 0.0025 ** 2)  # the cost test's spread
    assert text[f"agent_cost_successes_total{lbl}"] == 6  # cost per success divides by the same results' successes
    assert text[f"agent_steps_sum{lbl}"] == 2 + 3 + 4 + 5 + 6 + 7 and text[f"agent_steps_count{lbl}"] == 6
    le = '{service="agent-infer",env="prod",version="v2.0.0",le="%s"}'
    assert text["agent_steps_bucket" + le % "4"] == 3 and text["agent_steps_bucket" + le % "8"] == 6
    assert text["agent_ttft_seconds_bucket" + le % "0.5"] == 4 and text["agent_ttft_seconds_bucket" + le % "+Inf"] == 6
    assert text[f"agent_ttft_seconds_sum{lbl}"] == pytest.approx(0.12 * 21)
    assert not [k for k in text if 'version="v1.9.0"' in k and k.startswith(("agent_eval", "agent_tool", "agent_cost",
                                                                              "agent_steps", "agent_ttft"))]
    assert text['agent_requests_total{service="agent-infer",env="prod",version="v1.9.0",outcome="ok"}'] == 1


def test_quality_series_leave_the_scrape_with_their_version():
    ints, sums = metrics.aggregate("agent-infer", "prod", [TraceResult(
        trace_id="t", agent_id="a", version="v2.0.0", ok=True, latency_ms=1.0, tokens=1, eval_score=0.5, steps=3,
        ttft_ms=10.0, tool_calls=1, tool_errors=0, cost=0.1, tokens_in=1, tokens_out=1)])
    raw = {**ints, **sums}
    label = metrics.SEP.join(("agent-infer", "prod", "v2.0.0"))
    kept, stale, gone, _ = metrics.expire(raw, {label: "100"}, now=10_000, retention_s=3600)
    assert kept == {} and set(stale) == set(raw) and gone == [label]
