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
from sla.models import GateRecord, SlaReport, SlaSample
from sla.prometheus import PrometheusClient
from tests.routing.conftest import ThreadedAsgiServer
from tests.sla.prometheus_fakes import AgentExporter

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
    yield from _prometheus(asgi_server, tmp_path)


@pytest.fixture
def agents():
    exporter = AgentExporter()
    yield exporter
    exporter.stop()


@pytest.fixture
def prometheus_with_agents(asgi_server, agents, tmp_path):
    """Rollgate's trace results and the agents' own /metrics, as a real deployment scrapes both."""
    yield from _prometheus(asgi_server, tmp_path, agents_port=agents.port)


def _prometheus(asgi_server, tmp_path, *, agents_port: int | None = None):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: rollgate-traces\n"
        "    metrics_path: /metrics/traces\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{asgi_server.port}']}}]\n"
        + (f"  - job_name: agents\n    static_configs: [{{targets: ['127.0.0.1:{agents_port}']}}]\n"
           if agents_port else ""))
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
        asgi_server, prometheus, clean_trace_metrics, agent_key, live_release, make_release, rm, ops, qa, settings,
        client):
    services.policy_version_save(actor=Actor.of(ops), environment="staging", comment="quality test",
                                 policy={"evaluation_window_s": 60, "evaluation_interval_s": 30})
    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    canary.refresh_from_db()
    assert (canary.status, canary.gray_weight) == (ReleaseStatus.GRAY, 5)
    url = f"{asgi_server.url}/api/traces/results?service=agent-infer&environment=staging"
    headers = {"Authorization": f"Bearer {agent_key}"}

    # First samples of every series (a window counts from its first scrape), then the traffic that is judged:
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

    # QA sees the score beside the verdict: the snapshot keeps the canary's mean eval score, the chart sample
    # both sides, and the reports list has a column for it.
    report = SlaReport.objects.filter(release=canary, action="pause").get()
    sample = SlaSample.objects.filter(release=canary).order_by("-sequence").first()
    assert 0.73 <= report.eval_score <= 0.75
    assert 0.73 <= sample.canary_eval_score <= 0.75 and 0.81 <= sample.baseline_eval_score <= 0.83
    client.force_login(qa)
    listed = client.get("/sla/reports/", {"action": "pause"}).content.decode()
    assert f"<td class=\"num\" data-eval-score>{report.eval_score:.3f}</td>" in listed
    assert client.get("/api/sla/reports/", {"action": "pause"}).json()[0]["eval_score"] == report.eval_score

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


def test_cost_per_successful_task_divides_by_the_successes_of_the_same_results(
        asgi_server, prometheus_with_agents, agents, clean_trace_metrics, agent_key, live_release, make_release):
    """The agents' own request counters run ahead of the posted results (a batch still on its way) and are scraped
    at other moments; dividing one source's cost by the other's successes made an identical canary read 1.34x its
    stable in the demo. Here the stable's agents have served 3x what was posted, the canary's exactly what was
    posted, both at the same price: each still costs its price per successful task."""
    prometheus = prometheus_with_agents
    make_release("v1.1.0", "staging")  # a version Rollgate knows: results of unknown versions are refused
    url = f"{asgi_server.url}/api/traces/results?service=agent-infer&environment=staging"
    headers = {"Authorization": f"Bearer {agent_key}"}
    agents.record("agent-infer", "staging", "v1.0.0", ok=0, errors=0)
    agents.record("agent-infer", "staging", "v1.1.0", ok=0, errors=0)
    post_results(url, traces("v1.0.0", 10, mean=0.8, cost=0.004) + traces("v1.1.0", 10, mean=0.8, cost=0.004),
                 headers=headers)
    successes = 'sum(agent_cost_successes_total{service="agent-infer",env="staging",version="%s"})'
    wait_until(prometheus, successes % "v1.1.0", 10)
    wait_until(prometheus, 'count(agent_requests_total{job="agents"})', 4)
    answer = post_results(url, traces("v1.0.0", 300, mean=0.8, start=10, cost=0.004)
                          + traces("v1.1.0", 150, mean=0.8, start=10, cost=0.004), headers=headers)
    assert answer["accepted"] == 450, answer
    agents.record("agent-infer", "staging", "v1.0.0", ok=900, errors=0)
    agents.record("agent-infer", "staging", "v1.1.0", ok=150, errors=0)
    wait_until(prometheus, successes % "v1.0.0", 310)
    wait_until(prometheus, 'sum(agent_requests_total{job="agents",version="v1.0.0"})', 900)
    time.sleep(1.5)

    catalog, client = MetricCatalog(), PrometheusClient(prometheus, timeout_s=5)
    try:
        for version, posted in (("v1.0.0", 300), ("v1.1.0", 150)):
            selector = ReleaseSelector("agent-infer", "staging", version)
            metrics = (Metric.COST_PER_SUCCESS, Metric.SUCCESS_COUNT, Metric.COST_SQUARES_PER_SUCCESS)
            values = client.instant_many({m: catalog.for_release(m, selector, 60) for m in metrics}, window_s=60,
                                         at=datetime.now(timezone.utc))
            value = {m: samples[0].reading.value for m, samples in values.items()}
            assert value[Metric.SUCCESS_COUNT] == posted, version
            assert value[Metric.COST_PER_SUCCESS] == pytest.approx(0.004, rel=1e-6), version
            assert value[Metric.COST_SQUARES_PER_SUCCESS] == pytest.approx(0.004 ** 2, rel=1e-6), version
    finally:
        client.close()
