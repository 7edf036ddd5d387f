"""The demo agent exports the SLA metric contract (sla/catalog.py) and behaves as its profile says."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from demo.agent.behaviour import Behaviour, BehaviourError, behaviour_for, load_config
from demo.agent.server import LATENCY_BUCKETS
from deploy.targets.local import REPO_ROOT, free_listening_socket
from rollgate_client.results import validate_batch

LABELS = {"service": "agent-infer", "env": "staging"}


def key(name, **labels):
    return (name, frozenset(labels.items()))


def release(version, **extra):
    return {**LABELS, "version": version, **extra}


def test_healthy_agent_exports_every_contract_series_with_release_labels(start_agent):
    agent = start_agent("v1.0.0", tokens=1000)
    before = agent.samples()
    # Every series exists at zero before the first trace, so the gate's window sees the first failure.
    for name, extra in [("agent_requests_total", {"outcome": "ok"}), ("agent_requests_total", {"outcome": "error"}),
                        ("agent_callback_total", {"outcome": "ok"}), ("agent_callback_total", {"outcome": "error"}),
                        ("agent_tokens_total", {}), ("agent_log_errors_total", {}), ("agent_crashes_total", {}),
                        ("agent_request_latency_seconds_count", {})]:
        assert before[key(name, **release("v1.0.0", **extra))] == 0, name
    for n in range(30):
        status, body = agent.run(f"t-{n}")
        assert status == 200 and body["ok"] and body["version"] == "v1.0.0" and body["trace_id"] == f"t-{n}"
        assert set(body) == {"trace_id", "agent_id", "version", "ok", "latency_ms", "callback_ok", "tokens",
                             "model", "eval_score", "tool_calls", "tool_errors", "steps", "ttft_ms", "tokens_in",
                             "tokens_out"}
    samples = agent.samples()
    assert samples[key("agent_requests_total", **release("v1.0.0", outcome="ok"))] == 30
    assert samples[key("agent_requests_total", **release("v1.0.0", outcome="error"))] == 0
    assert samples[key("agent_callback_total", **release("v1.0.0", outcome="ok"))] == 30
    assert 30 * 500 < samples[key("agent_tokens_total", **release("v1.0.0"))] < 30 * 1500
    assert samples[key("agent_request_latency_seconds_count", **release("v1.0.0"))] == 30
    bounds = sorted(float(dict(labels)["le"]) for name, labels in samples
                    if name == "agent_request_latency_seconds_bucket")
    assert bounds == [*LATENCY_BUCKETS, float("inf")], "identical bucket bounds in every version"
    assert samples[key("process_resident_memory_bytes", **release("v1.0.0"))] > 10_000_000
    assert samples[key("agent_info", **release("v1.0.0", profile="healthy"))] == 1


def test_every_trace_carries_llm_quality_fields_that_rollgate_accepts(start_agent):
    agent = start_agent("v1.1.0", tokens=1500, eval_score=0.82, eval_spread=0.08, tool_calls=3.0,
                        tool_error_rate=0.1, error_rate=0.1)
    bodies = [agent.run(f"t-{n}")[1] for n in range(400)]
    ok = [body for body in bodies if body["ok"]]
    scores = [body["eval_score"] for body in ok]
    assert 0.80 < sum(scores) / len(scores) < 0.84 and all(0 <= score <= 1 for score in scores)
    assert all(body["eval_score"] is None for body in bodies if not body["ok"]), "a failed trace has no answer"
    calls = sum(body["tool_calls"] for body in bodies)
    assert 2.7 * 400 < calls < 3.3 * 400 and 0.06 < sum(body["tool_errors"] for body in bodies) / calls < 0.14
    assert all(body["steps"] == body["tool_calls"] + 1 and body["ttft_ms"] <= body["latency_ms"] for body in bodies)
    assert all(body["tokens_in"] + body["tokens_out"] == body["tokens"] and body["model"] == "demo-large"
               for body in bodies)
    # What Rollgate's results endpoint checks: none of these would be refused (no cost: Rollgate prices the tokens).
    valid, errors = validate_batch(bodies)
    assert not errors and len(valid) == 400 and all(result.cost is None for result in valid)


def test_worse_answers_profile_keeps_every_request_successful_but_scores_lower(start_agent):
    worse = behaviour_for("v1.2.1")
    assert worse.profile == "worse_answers" and worse.error_rate == behaviour_for("v1.1.0").error_rate
    agent = start_agent("v1.2.1", **{field: getattr(worse, field) for field in
                                     ("model", "eval_score", "eval_spread", "error_rate")})
    bodies = [agent.run(f"t-{n}")[1] for n in range(300)]
    scores = [body["eval_score"] for body in bodies if body["ok"]]
    assert sum(body["ok"] for body in bodies) >= 295 and 0.68 < sum(scores) / len(scores) < 0.72
    assert {body["model"] for body in bodies} == {"demo-small"}


def test_erroring_agent_answers_500_and_counts_errors_and_error_logs(start_agent):
    agent = start_agent("v1.2.0", profile="erroring", error_rate=0.5)
    statuses = [agent.run(f"t-{n}") for n in range(40)]
    failed = [body for status, body in statuses if status == 500]
    assert 5 < len(failed) < 35
    assert all(body["ok"] is False and body["callback_ok"] is None for body in failed)
    samples = agent.samples()
    assert samples[key("agent_requests_total", **release("v1.2.0", outcome="error"))] == len(failed)
    assert samples[key("agent_requests_total", **release("v1.2.0", outcome="ok"))] == 40 - len(failed)
    assert samples[key("agent_log_errors_total", **release("v1.2.0"))] == len(failed)


def test_failing_callbacks_agent_succeeds_but_counts_callback_errors(start_agent):
    agent = start_agent("v1.3.0", callback_error_rate=0.5)
    bodies = [agent.run(f"t-{n}")[1] for n in range(40)]
    failed_callbacks = sum(body["callback_ok"] is False for body in bodies)
    assert 5 < failed_callbacks < 35 and all(body["ok"] for body in bodies)
    samples = agent.samples()
    assert samples[key("agent_callback_total", **release("v1.3.0", outcome="error"))] == failed_callbacks
    assert samples[key("agent_requests_total", **release("v1.3.0", outcome="error"))] == 0
    assert samples[key("agent_log_errors_total", **release("v1.3.0"))] == 0, "a warning, not an ERROR line"


def test_slow_agent_shifts_the_latency_histogram(start_agent):
    fast, slow = start_agent("v1.0.0", latency_ms=5), start_agent("v1.1.0", latency_ms=30)
    for n in range(10):
        fast.run(f"f-{n}")
        slow.run(f"s-{n}")
    fast_samples, slow_samples = fast.samples(), slow.samples()
    assert fast_samples[key("agent_request_latency_seconds_bucket", **release("v1.0.0", le="0.01"))] == 10
    assert slow_samples[key("agent_request_latency_seconds_bucket", **release("v1.1.0", le="0.025"))] == 0
    assert slow_samples[key("agent_request_latency_seconds_bucket", **release("v1.1.0", le="0.05"))] == 10
    assert slow_samples[key("agent_request_latency_seconds_sum", **release("v1.1.0"))] == pytest.approx(0.3, rel=0.01)


def test_noisy_logs_count_error_lines_on_successful_traces(start_agent):
    agent = start_agent("v1.4.0", log_error_rate=1.0)
    for n in range(12):
        assert agent.run(f"t-{n}")[0] == 200
    assert agent.samples()[key("agent_log_errors_total", **release("v1.4.0"))] == 12


def test_memory_leak_grows_resident_memory(start_agent):
    agent = start_agent("v1.5.0", leak_kb_per_request=2048, leak_max_mb=40)
    before = agent.samples()[key("process_resident_memory_bytes", **release("v1.5.0"))]
    for n in range(30):
        agent.run(f"t-{n}")
    after = agent.samples()[key("process_resident_memory_bytes", **release("v1.5.0"))]
    assert after - before > 30 * 1024 * 1024, "40 MB kept (the cap), at least 30 MB of it resident"


def test_broken_agent_fails_its_health_check_and_bad_input_is_refused(start_agent):
    agent = start_agent("v9.0.0", healthy=False)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(agent.url + "/healthz", timeout=2)
    assert error.value.code == 503
    request = urllib.request.Request(agent.url + "/run", data=b'{"trace": "x"}')
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=2)
    assert error.value.code == 400 and "trace_id" in json.loads(error.value.read())["detail"]


def test_crashing_agent_is_restarted_by_its_supervisor_and_counts_crashes(tmp_path):
    config = tmp_path / "versions.yaml"
    config.write_text("defaults: {latency_ms: 1, latency_spread: 0}\nprofiles: {crash: {crash_after_requests: 3}}\n"
                      "versions: {v1.2.0: crash}\n")
    sock = free_listening_socket()
    port = sock.getsockname()[1]
    agent = subprocess.Popen(
        [sys.executable, "-m", "demo.agent", "--supervise", "--service", "agent-infer", "--env", "staging",
         "--version", "v1.2.0", "--listen-fd", str(sock.fileno()), "--config", str(config)],
        cwd=REPO_ROOT, pass_fds=(sock.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    sock.close()
    url = f"http://127.0.0.1:{port}"

    def run(n):
        request = urllib.request.Request(url + "/run", data=json.dumps({"trace_id": f"t-{n}"}).encode())
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status
        except (urllib.error.URLError, ConnectionError):
            return "reset"

    def crashes():
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/metrics", timeout=2) as answer:
                    for line in answer.read().decode().splitlines():
                        if line.startswith("agent_crashes_total{"):
                            return float(line.rsplit(" ", 1)[1])
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError("agent did not come back")

    try:
        assert crashes() == 0
        assert [run(n) for n in range(3)] == [200, 200, "reset"]
        assert crashes() == 1, "restarted on the same port, told about the crash"
        assert [run(n) for n in range(3, 6)] == [200, 200, "reset"]
        assert crashes() == 2
    finally:
        agent.terminate()
        output = agent.communicate(timeout=10)[0].decode()
    assert agent.returncode == 0, output
    assert output.count("crashing on trace 3") == 2 and "restarting in" in output


def test_versions_yaml_defines_a_profile_for_every_gate_rule():
    config = load_config()
    assert {"healthy", "slow", "erroring", "failing_callbacks", "noisy_logs", "crash", "memory_leak",
            "broken", "worse_answers", "flaky_tools", "pricier"} <= set(config["profiles"])
    assert behaviour_for("v1.1.0", config=config).profile == "healthy"
    assert behaviour_for("v1.2.0", config=config).error_rate >= 0.05
    assert behaviour_for("v7.7.7", config=config).profile == "healthy"
    assert behaviour_for("v1.0.0", config=config, profile="slow").latency_ms > behaviour_for("v1.0.0").latency_ms


def test_bad_behaviour_config_names_the_field():
    with pytest.raises(BehaviourError, match=r"profiles.x: unknown field\(s\) error_rte"):
        behaviour_for("v1", config={"profiles": {"x": {"error_rte": 0.1}}, "versions": {"v1": "x"}})
    with pytest.raises(BehaviourError, match="error_rate: must be a fraction 0..1"):
        Behaviour(error_rate=1.5)
    with pytest.raises(BehaviourError, match="eval_score: must be a fraction 0..1"):
        Behaviour(eval_score=1.3)
    with pytest.raises(BehaviourError, match="model: must be a non-empty string"):
        Behaviour(model="")
    with pytest.raises(BehaviourError, match="profile: 'nope' is not defined"):
        behaviour_for("v1", config={"profiles": {}}, profile="nope")


def _put_behaviour(agent, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(agent.url + "/behaviour", data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_behaviour_switches_at_runtime_and_an_unknown_profile_is_refused_by_name(start_agent):
    agent = start_agent("v1.2.0", error_rate=0.0)
    assert all(agent.run(f"before-{n}")[0] == 200 for n in range(20))
    status, body = _put_behaviour(agent, {"profile": "broken"})
    assert (status, body["profile"], body["previous"]) == (200, "broken", "healthy")
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(agent.url + "/healthz", timeout=5)
    assert failed.value.code == 503, "the new profile applies at once"
    assert agent.samples()[key("agent_info", profile="broken", **release("v1.2.0"))] == 1
    assert agent.samples()[key("agent_info", profile="healthy", **release("v1.2.0"))] == 0
    status, body = _put_behaviour(agent, {"profile": "no-such-profile"})
    assert status == 400 and "no-such-profile" in body["errors"]["profile"][0]
    assert _put_behaviour(agent, {})[0] == 400
