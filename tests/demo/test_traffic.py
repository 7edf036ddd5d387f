"""The traffic generator routes by the table's hash, calls the chosen agent, and posts results in batches."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

from demo.traffic import REGIONS, TENANTS, LocalEndpoints, TrafficGenerator, quality_fields
from deploy.targets.local import REPO_ROOT
from rollgate_client import Router, RoutingClient, RoutingTable


def static_client(weight: float) -> RoutingClient:
    table = RoutingTable(service="agent-infer", environment="staging", stable_version="v1.0.0",
                         canary_version="v1.1.0", canary_weight=weight, revision=3)
    return RoutingClient(table_url=None, initial_table=table)


def test_traffic_splits_by_weight_exactly_as_the_router_decides_and_posts_every_result(start_agent,
                                                                                        results_receiver):
    stable, canary = start_agent("v1.0.0"), start_agent("v1.1.0")
    client = static_client(30)
    generator = TrafficGenerator(client, endpoints=lambda: {"v1.0.0": stable.url, "v1.1.0": canary.url},
                                 results_url=results_receiver.url, rate=300, batch_size=100, seed=1)
    stats = generator.run(threading.Event(), max_traces=600)

    assert stats.sent == 600 and stats.ok == 600
    assert 0.25 < stats.by_version["v1.1.0"] / 600 < 0.35
    items = results_receiver.items
    assert len(items) == 600 == stats.posted and stats.rejected == 0
    assert all(len(batch) <= 100 for batch in results_receiver.batches)
    router = Router(client.table)
    for item in items:
        number = int(item["trace_id"].rsplit("-", 1)[1])
        expected = router.choose(item["trace_id"], tenant=TENANTS[number % len(TENANTS)],
                                 region=REGIONS[number % len(REGIONS)])
        assert item["version"] == expected, item
    # The agents saw exactly the traces routed to them.
    assert canary.samples()[("agent_requests_total", frozenset({"service": "agent-infer", "env": "staging",
                                                                "version": "v1.1.0", "outcome": "ok"}.items()))] \
        == stats.by_version["v1.1.0"]


def test_the_agents_quality_fields_reach_rollgate_with_each_result(start_agent, results_receiver):
    # The canary (v1.1.0 in the static table) runs the worse_answers profile's model and score.
    stable, canary = start_agent("v1.0.0"), start_agent("v1.1.0", model="demo-small", eval_score=0.70)
    generator = TrafficGenerator(static_client(50), endpoints=lambda: {"v1.0.0": stable.url, "v1.1.0": canary.url},
                                 results_url=results_receiver.url, rate=500, seed=2)
    generator.run(threading.Event(), max_traces=300)
    items = results_receiver.items
    assert len(items) == 300 and generator.stats.rejected == 0
    for item in items:
        assert {"eval_score", "tool_calls", "tool_errors", "steps", "ttft_ms", "tokens_in", "tokens_out",
                "model"} <= set(item), item
        assert "cost" not in item  # Rollgate prices the model's tokens from its table
    scores = {version: [i["eval_score"] for i in items if i["version"] == version] for version in ("v1.0.0", "v1.1.0")}
    assert sum(scores["v1.0.0"]) / len(scores["v1.0.0"]) - sum(scores["v1.1.0"]) / len(scores["v1.1.0"]) > 0.08
    assert {i["model"] for i in items if i["version"] == "v1.1.0"} == {"demo-small"}


def test_quality_fields_of_the_wrong_type_are_left_out_not_sent():
    assert quality_fields({"eval_score": "0.9", "tool_calls": 2.5, "tool_errors": 1, "steps": True, "ttft_ms": -1,
                           "tokens_in": 10, "model": "x\x00y", "cost": float("nan")}) == {"tokens_in": 10}
    assert quality_fields({"eval_score": 0.5, "tool_calls": 1, "tool_errors": 2, "model": "m"}) == \
        {"eval_score": 0.5, "tool_calls": 1, "model": "m"}


def test_without_a_table_everything_goes_to_stable(start_agent, results_receiver):
    stable = start_agent("v1.0.0")
    client = RoutingClient(table_url=None, default_stable="v1.0.0")
    generator = TrafficGenerator(client, endpoints=lambda: {"v1.0.0": stable.url},
                                 results_url=results_receiver.url, rate=500)
    stats = generator.run(threading.Event(), max_traces=100)
    assert dict(stats.by_version) == {"v1.0.0": 100}
    assert {item["version"] for item in results_receiver.items} == {"v1.0.0"}


def test_failures_are_reported_as_failed_results(start_agent, results_receiver):
    stable, canary = start_agent("v1.0.0"), start_agent("v1.1.0", error_rate=1.0)
    generator = TrafficGenerator(static_client(50), endpoints=lambda: {"v1.0.0": stable.url, "v1.1.0": canary.url},
                                 results_url=results_receiver.url, rate=500)
    stats = generator.run(threading.Event(), max_traces=200)
    by_version = {}
    for item in results_receiver.items:
        by_version.setdefault(item["version"], set()).add(item["ok"])
    assert by_version == {"v1.0.0": {True}, "v1.1.0": {False}}
    assert stats.failed == stats.by_version["v1.1.0"] > 0


def test_a_canary_without_a_running_agent_is_sent_to_stable_and_counted(start_agent, results_receiver):
    stable = start_agent("v1.0.0")
    generator = TrafficGenerator(static_client(50), endpoints=lambda: {"v1.0.0": stable.url},
                                 results_url=results_receiver.url, rate=500)
    stats = generator.run(threading.Event(), max_traces=100)
    assert dict(stats.by_version) == {"v1.0.0": 100} and 20 < stats.rerouted < 80


def test_rate_is_bounded(start_agent):
    stable = start_agent("v1.0.0")
    generator = TrafficGenerator(RoutingClient(table_url=None, default_stable="v1.0.0"),
                                 endpoints=lambda: {"v1.0.0": stable.url}, results_url=None, rate=50)
    started = time.monotonic()
    stats = generator.run(threading.Event(), duration_s=1.0)
    assert 40 <= stats.sent <= 52 and time.monotonic() - started < 2


def test_ports_come_from_the_local_target_state_file(tmp_path):
    (tmp_path / "state.json").write_text(json.dumps({"processes": [
        {"service": "agent-infer", "env": "staging", "version": "v1.0.0", "track": "stable", "port": 4001},
        {"service": "agent-infer", "env": "staging", "version": "v1.1.0", "track": "canary", "port": 4002},
        {"service": "agent-infer", "env": "prod", "version": "v0.9.0", "track": "stable", "port": 4003},
    ]}))
    endpoints = LocalEndpoints("agent-infer", "staging", tmp_path)
    assert endpoints.urls() == {"v1.0.0": "http://127.0.0.1:4001", "v1.1.0": "http://127.0.0.1:4002"}
    assert endpoints.stable() == "v1.0.0"


def test_command_line_stops_cleanly_on_sigterm_and_flushes_results(start_agent, results_receiver, tmp_path):
    stable = start_agent("v1.0.0")
    (tmp_path / "state.json").write_text(json.dumps({"processes": [
        {"service": "agent-infer", "env": "staging", "version": "v1.0.0", "track": "stable",
         "port": int(stable.url.rsplit(":", 1)[1])}]}))
    # No Rollgate is listening at the table URL: the client keeps routing to the stable version.
    process = subprocess.Popen(
        [sys.executable, "-m", "demo.traffic", "--rollgate", "http://127.0.0.1:9", "--state-dir", str(tmp_path),
         "--results-url", results_receiver.url, "--rate", "100", "--report-every", "0.5"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 20
        while not results_receiver.batches and time.monotonic() < deadline:
            time.sleep(0.1)
        assert results_receiver.batches, "no batch posted within 20 s"
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=10)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    final = [line for line in output.splitlines() if "stopped: sent" in line]
    assert final, output
    sent = int(final[0].split("stopped: sent ")[1].split()[0])
    assert len(results_receiver.items) == sent, "every trace sent was posted before exiting"


def test_results_go_to_the_scoped_endpoint_with_the_agent_token_from_a_file(tmp_path):
    from demo.traffic import auth_headers, results_url_for

    assert (results_url_for("http://127.0.0.1:8000/", "agent-infer", "staging")
            == "http://127.0.0.1:8000/api/traces/results?service=agent-infer&environment=staging")
    token_file = tmp_path / "agent-token"
    token_file.write_text("rgat_abc\n")
    assert auth_headers({"ROLLGATE_AGENT_TOKEN_FILE": str(token_file)}) == {"Authorization": "Bearer rgat_abc"}
    assert auth_headers({"ROLLGATE_TOKEN": "k1"}) == {"Authorization": "Token k1"}
    assert auth_headers({}) == {}
