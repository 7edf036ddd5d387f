"""LLM quality gates end to end: trace results with eval scores, tool calls and cost go through the real results
endpoint and Redis aggregation, a private Prometheus scrapes /metrics/traces, the SLA catalog's quality queries
read them, and the gate pauses a canary whose every request succeeds but whose answers got worse."""
import shutil
import socket
import subprocess
import time
from datetime import datetime, timezone

import pytest
import requests

from releases.choices import ReleaseStatus
from releases.services import Actor, release_promote
from rollgate_client.results import post_results
from sla import services
from sla.catalog import QUALITY_METRICS, Metric, MetricCatalog, ReleaseSelector
from sla.models import GateRecord
from sla.prometheus import PrometheusClient
from tests.routing.conftest import ThreadedAsgiServer

pytestmark = pytest.mark.django_db(transaction=True)
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SPREAD = (-0.14, -0.07, 0.0, 0.07, 0.14)  # eval scores around each version's mean (sd ~0.1)


@pytest.fixture
def asgi_server(transactional_db):
    server = ThreadedAsgiServer()
    yield server
    server.stop()


@pytest.fixture
def clean_trace_metrics(settings):
    import redis

    from routing import metrics

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(metrics.HASH_KEY, metrics.SEEN_KEY)
    yield
    client.delete(metrics.HASH_KEY, metrics.SEEN_KEY)
    client.close()


@pytest.fixture
def agent_key(environments, service):
    from routing import auth

    _, key = auth.token_create(name="quality-test", environment=environments["staging"], service=service)
    return key


@pytest.fixture
def prometheus(asgi_server, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: rollgate-traces\n"
        "    metrics_path: /metrics/traces\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{asgi_server.port}']}}]\n")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def instant(url: str, promql: str) -> float | None:
    try:
        result = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=3).json()["data"]["result"]
    except (requests.RequestException, KeyError, ValueError):
        return None
    return float(result[0]["value"][1]) if result else None


def wait_until(url: str, promql: str, expected: float, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = instant(url, promql)
        if seen == expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"Prometheus shows {promql} = {seen}, expected {expected}")


def traces(version: str, count: int, *, mean: float, start: int = 0, tool_errors_every: int = 0,
           cost: float = 0.002):
    return [{"trace_id": f"{version}-{i}", "agent_id": "agent-1", "version": version, "ok": True,
             "latency_ms": 300.0 + (i % 7) * 40, "tokens": 900, "eval_score": round(mean + SPREAD[i % 5], 4),
             "tool_calls": 3, "tool_errors": 1 if tool_errors_every and i % tool_errors_every == 0 else 0,
             "steps": 3 + i % 4, "ttft_ms": 180.0 + (i % 5) * 30, "tokens_in": 700, "tokens_out": 200,
             "cost": cost}
            for i in range(start, start + count)]


def test_only_the_eval_score_regresses_and_the_gate_pauses_saying_so(
        asgi_server, prometheus, clean_trace_metrics, agent_key, live_release, make_release, rm, ops, settings):
    services.policy_version_save(actor=Actor.of(ops), environment="staging", comment="quality test",
                                 policy={"evaluation_window_s": 60, "evaluation_interval_s": 30})
    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    canary.refresh_from_db()
    assert (canary.status, canary.gray_weight) == (ReleaseStatus.GRAY, 5)
    url = f"{asgi_server.url}/api/traces/results?service=agent-infer&environment=staging"
    headers = {"Authorization": f"Bearer {agent_key}"}

    # First samples of every series (increase() counts from the first scrape), then the traffic that is judged:
    # stable 0.82, canary 0.74; both succeed on 100 % of requests with the same latency, tool errors and cost.
    post_results(url, traces("v1.0.0", 20, mean=0.82) + traces("v1.1.0", 10, mean=0.74), headers=headers)
    count = 'sum(agent_eval_score_count{service="agent-infer",env="staging",version="%s"})'
    wait_until(prometheus, count % "v1.1.0", 10)
    for part in range(3):
        answer = post_results(url, traces("v1.0.0", 200, mean=0.82, start=20 + 200 * part, tool_errors_every=50)
                              + traces("v1.1.0", 100, mean=0.74, start=10 + 100 * part, tool_errors_every=50),
                              headers=headers)
        assert answer["accepted"] == 300
    wait_until(prometheus, count % "v1.1.0", 310)
    wait_until(prometheus, count % "v1.0.0", 620)
    time.sleep(1.5)  # one more scrape: the window's last sample is the full count

    summary = services.gate_run(prometheus_url=prometheus)
    [applied] = [a for a in summary.applied if a.release_id == canary.pk]
    canary.refresh_from_db()
    record = GateRecord.objects.get(pk=canary.pk)
    findings = {f["rule"]: f for f in record.last_verdict["findings"]}
    assert (applied.action, canary.status) == ("pause", ReleaseStatus.PAUSED), record.last_verdict["summary"]

    eval_rule = findings["eval_score_regression"]
    assert eval_rule["fired"] and eval_rule["effect"] == "pause"
    assert 0.73 <= eval_rule["measured"] <= 0.75 and 0.76 <= eval_rule["threshold"] <= 0.78
    assert "agent_eval_score_sum" in eval_rule["query"] and 'version="v1.1.0"' in eval_rule["query"]
    # HTTP success saw nothing: no error, latency, tool or cost rule fired, only the eval score did.
    fired = {rule for rule, f in findings.items() if f["fired"] and f["effect"] not in ("hold",)}
    assert fired == {"eval_score_regression"}, fired
    assert not findings["tool_error_regression"]["fired"] and not findings["cost_per_success"]["fired"]
    assert record.last_verdict["summary"].startswith("v1.1.0's answers got worse: mean eval score 0.74 vs v1.0.0's 0.82")
    assert "although its requests still succeed: ramp paused at" in record.last_verdict["summary"]
    assert "answers got worse" in canary.status_reason

    # The catalog's other quality queries answer against the same Prometheus.
    catalog, selector = MetricCatalog(), ReleaseSelector("agent-infer", "staging", "v1.1.0")
    client = PrometheusClient(prometheus, timeout_s=5)
    try:
        values = client.instant_many({m: catalog.for_release(m, selector, 60) for m in QUALITY_METRICS}, window_s=60,
                                     at=datetime.now(timezone.utc))
    finally:
        client.close()
    value = {m: (samples[0].reading.value if samples else None) for m, samples in values.items()}
    assert value[Metric.TOOL_ERROR_RATE] == pytest.approx(6 / 900, abs=0.002)  # 6 failing of 300 traces x 3 calls
    assert 3 <= value[Metric.STEPS_P95] <= 6.5
    assert 0.25 <= value[Metric.TTFT_P95] <= 0.35
    assert value[Metric.COST_PER_SUCCESS] == pytest.approx(0.002, rel=0.02)
