"""The demo's Prometheus: a real server scrapes the agents found through the local target's file_sd file."""

import json
import shutil
import time
import urllib.parse
import urllib.request

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from demo.prometheus import AGENTS_JOB, ROLLGATE_JOB, ensure_prometheus, render_config, write_config


def query(url: str, promql: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/query?query={urllib.parse.quote(promql)}", timeout=5) as answer:
        return json.loads(answer.read())["data"]["result"]


def test_config_scrapes_agents_and_rollgate_every_second(tmp_path):
    config = render_config(targets_file=tmp_path / "targets.json", rollgate_url="http://127.0.0.1:8123")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert config["global"]["scrape_interval"] == "1s"
    assert jobs[AGENTS_JOB]["file_sd_configs"][0]["files"] == [str(tmp_path / "targets.json")]
    assert jobs[AGENTS_JOB]["honor_labels"] is True
    assert jobs[ROLLGATE_JOB]["metrics_path"] == "/metrics/traces"
    assert jobs[ROLLGATE_JOB]["static_configs"] == [{"targets": ["127.0.0.1:8123"]}]


def test_private_prometheus_scrapes_agents_with_their_labels_and_rollgate(start_agent, tmp_path):
    if not shutil.which("prometheus"):
        pytest.skip("prometheus is not installed (apt-get install prometheus); scripts/services.sh installs it")
    agent = start_agent("v1.0.0")
    for n in range(5):
        agent.run(f"t-{n}")
    registry = CollectorRegistry()
    Counter("rollgate_trace_results", "results received", registry=registry).inc(3)
    # What /metrics/traces exports: a family the agents export too (renamed) and an LLM quality one (kept).
    Counter("agent_requests", "reported", ["service", "env", "version", "outcome"], registry=registry).labels(
        "agent-infer", "staging", "v1.0.0", "ok").inc(4)
    Gauge("agent_eval_score_count", "scored", ["service", "env", "version"], registry=registry).labels(
        "agent-infer", "staging", "v1.0.0").set(4)
    rollgate, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps([{"targets": [agent.url.removeprefix("http://")],
                                    "labels": {"service": "agent-infer", "env": "staging", "version": "v1.0.0",
                                               "track": "stable"}}]))
    config = write_config(tmp_path / "prometheus.yml", targets_file=targets,
                          rollgate_url=f"http://127.0.0.1:{rollgate.server_address[1]}")
    assert yaml.safe_load(config.read_text())["global"]["scrape_interval"] == "1s"
    prometheus = ensure_prometheus(config, log_path=tmp_path / "prometheus.log")
    try:
        assert prometheus.process is not None, "nothing at PROMETHEUS_URL scrapes the demo: a private one starts"
        deadline = time.monotonic() + 20
        requests = memory = results = []
        scored = reported = []
        while time.monotonic() < deadline and not (requests and memory and results and scored and reported):
            time.sleep(0.5)
            requests = query(prometheus.url, 'agent_requests_total{service="agent-infer",env="staging",'
                                             'version="v1.0.0",outcome="ok"}')
            # track comes only from the file_sd labels; the agent's own labels are kept (honor_labels).
            memory = query(prometheus.url, 'process_resident_memory_bytes{version="v1.0.0",track="stable"}')
            results = query(prometheus.url, f'rollgate_trace_results_total{{job="{ROLLGATE_JOB}"}}')
            scored = query(prometheus.url, 'agent_eval_score_count{version="v1.0.0"}')
            reported = query(prometheus.url, 'scheduler_reported_agent_requests_total{version="v1.0.0"}')
        # The agents' own count only: Rollgate's copy of the same family is kept apart, not summed in.
        assert requests and len(requests) == 1 and float(requests[0]["value"][1]) == 5
        assert reported and float(reported[0]["value"][1]) == 4
        assert scored and float(scored[0]["value"][1]) == 4, "quality series keep their names for the gate"
        assert memory and float(memory[0]["value"][1]) > 0
        assert results and float(results[0]["value"][1]) == 3
        reused = ensure_prometheus(config, url=prometheus.url)
        assert (reused.url, reused.process) == (prometheus.url, None)
    finally:
        prometheus.stop()
        rollgate.shutdown()
        rollgate.server_close()
    assert prometheus.process.poll() is not None
    assert not prometheus.storage.exists(), "temporary storage removed"
