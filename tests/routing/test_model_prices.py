"""The per-model price table (routing/prices.py, settings.ROLLGATE_MODEL_PRICES): a trace result with a model and
token counts but no cost is priced from it; an explicit cost wins; an unknown model is counted as cost unknown, not
as free; a wrong table stops the process at start naming the model and the field."""
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from rollgate_client.results import post_results, validate_batch
from routing import metrics
from routing.prices import PriceTableError, parse_prices, price_results

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db

PRICES = {"gpt-4o": {"input_per_1k": 0.0025, "output_per_1k": 0.01},
          "claude-haiku": {"input_per_1k": 0.0008, "output_per_1k": 0.004}}


def item(number, **changes):
    base = {"trace_id": f"t-{number}", "agent_id": "agent-1", "version": "v2.0.0", "ok": True, "latency_ms": 420.0,
            "tokens": 1200}
    base.update(changes)
    return base


def priced(*items, table=PRICES):
    valid, errors = validate_batch(list(items))
    assert not errors, errors
    return price_results(valid, parse_prices(table))


@pytest.mark.parametrize("model, tokens_in, tokens_out, cost", [
    ("gpt-4o", 1000, 1000, 0.0125),
    ("gpt-4o", 3210, 455, 3.210 * 0.0025 + 0.455 * 0.01),
    ("claude-haiku", 12_000, 0, 0.0096),
    ("claude-haiku", None, 250, 0.001),  # only completion tokens counted: priced on what was sent
])
def test_cost_is_computed_from_the_model_and_its_tokens(model, tokens_in, tokens_out, cost):
    fields = {k: v for k, v in (("tokens_in", tokens_in), ("tokens_out", tokens_out)) if v is not None}
    [result] = priced(item(0, model=model, **fields))
    assert result.cost == pytest.approx(cost)


def test_an_explicit_cost_wins_over_the_table_and_an_unknown_model_stays_unknown():
    explicit, unknown, unpriceable, no_model = priced(
        item(0, model="gpt-4o", tokens_in=1000, tokens_out=1000, cost=0.5),
        item(1, model="llama-70b-local", tokens_in=900, tokens_out=300),
        item(2, model="gpt-4o"),  # no token counts: nothing to price
        item(3, tokens_in=900, tokens_out=300))
    assert explicit.cost == 0.5 and unknown.cost is None and unpriceable.cost is None and no_model.cost is None
    ints, sums = metrics.aggregate("agent-infer", "prod", [explicit, unknown, unpriceable, no_model])
    label = metrics.SEP.join(("agent-infer", "prod", "v2.0.0"))
    assert sums[metrics.SEP.join(("cost", label))] == 0.5
    assert ints[metrics.SEP.join(("cu", label))] == 2  # the two traces naming a model whose cost is unknown
    raw = {**{k: str(v) for k, v in ints.items()}, **{k: repr(v) for k, v in sums.items()}}
    text = metrics.render(raw)
    assert 'agent_cost_unknown_total{service="agent-infer",env="prod",version="v2.0.0"} 2' in text
    assert 'agent_cost_total{service="agent-infer",env="prod",version="v2.0.0"} 0.5' in text


@pytest.mark.parametrize("model, message", [
    ("", "items[0].model: must be a non-empty string of at most 200 characters without NUL, got ''"),
    ("x" * 201, "items[0].model: must be a non-empty string of at most 200 characters"),
    ("gpt\x00-4o", "items[0].model: must be a non-empty string of at most 200 characters without NUL"),
    (42, "items[0].model: must be a non-empty string of at most 200 characters without NUL, got 42"),
])
def test_a_bad_model_name_is_refused_by_index(model, message):
    valid, errors = validate_batch([item(0, model=model), item(1, model="gpt-4o")])
    assert [r.trace_id for r in valid] == ["t-1"] and errors[0][0].startswith(message), errors


@pytest.mark.parametrize("table, message", [
    ({"gpt-4o": {"input_per_1k": 0.0025}},
     "ROLLGATE_MODEL_PRICES['gpt-4o'].output_per_1k: must be a number from 0 to 1000 (price per 1000 tokens), "
     "got None"),
    ({"gpt-4o": {"input_per_1k": -1, "output_per_1k": 0.01}},
     "ROLLGATE_MODEL_PRICES['gpt-4o'].input_per_1k: must be a number from 0 to 1000"),
    ({"haiku": {"input_per_1k": "0.8", "output_per_1k": 4}}, "ROLLGATE_MODEL_PRICES['haiku'].input_per_1k"),
    ({"haiku": {"input": 0.8, "output_per_1k": 4}}, "ROLLGATE_MODEL_PRICES['haiku']: unknown field(s) input"),
    ({"haiku": 0.8}, "ROLLGATE_MODEL_PRICES['haiku']: must be an object with input_per_1k and output_per_1k"),
    (["gpt-4o"], "ROLLGATE_MODEL_PRICES: must be a JSON object of model name"),
])
def test_a_wrong_price_table_is_refused_naming_the_model_and_the_field(table, message):
    with pytest.raises(PriceTableError) as raised:
        parse_prices(table)
    assert str(raised.value).startswith(message), raised.value


def test_a_wrong_table_in_the_environment_stops_django_at_start():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "ROLLGATE_MODEL_PRICES": '{"gpt-4o": {"input_per_1k": 0.0025, "output_per_1k": "cheap"}}'}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "ROLLGATE_MODEL_PRICES['gpt-4o'].output_per_1k: must be a number from 0 to 1000" in done.stderr
    env["ROLLGATE_MODEL_PRICES"] = "{not json"
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "ROLLGATE_MODEL_PRICES: not valid JSON" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_the_results_endpoint_prices_traces_from_the_settings_table(asgi_server, live_release, agent_key, settings,
                                                                    clean_trace_metrics):
    settings.ROLLGATE_MODEL_PRICES = PRICES
    url = f"{asgi_server.url}/api/traces/results?service=agent-infer&environment=staging"
    version = live_release.version.tag
    answer = post_results(url, [item(0, version=version, model="gpt-4o", tokens_in=2000, tokens_out=500),
                                item(1, version=version, model="gpt-4o", tokens_in=2000, tokens_out=500, cost=0.25),
                                item(2, version=version, model="mystery-model", tokens_in=10, tokens_out=10)],
                          headers={"Authorization": f"Bearer {agent_key}"})
    assert (answer["accepted"], answer["rejected"]) == (3, 0), answer
    text = httpx.get(f"{asgi_server.url}/metrics/traces", timeout=10).text
    labels = f'service="agent-infer",env="staging",version="{version}"'
    assert f"agent_cost_total{{{labels}}} 0.26" in text  # 2 x 0.0025 + 0.5 x 0.01 = 0.01, plus the explicit 0.25
    assert f"agent_cost_squared_total{{{labels}}} 0.0626" in text  # 0.01 ** 2 + 0.25 ** 2: the priced ones only
    assert f"agent_cost_unknown_total{{{labels}}} 1" in text
