"""A real Prometheus scrapes /metrics/traces and sees the posted trace results per version."""
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from releases.choices import ReleaseStatus
from releases.services import Actor, release_promote
from rollgate_client.results import post_results

pytestmark = pytest.mark.django_db(transaction=True)

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prometheus(asgi_server, tmp_path):
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: rollgate-traces\n"
        "    metrics_path: /metrics/traces\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{asgi_server.port}']}}]\n"
    )
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def query(prometheus_url: str, promql: str) -> dict:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.load(response)
    except OSError:
        return {}
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in data["data"]["result"]}


def test_prometheus_scrape_shows_posted_counts_per_version(asgi_server, prometheus, live_release, make_release, rm,
                                                          agent_key, clean_trace_metrics):
    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.GRAY

    def result(i, version, ok):
        return {"trace_id": f"t-{version}-{i}", "agent_id": "agent-1", "version": version, "ok": ok,
                "latency_ms": 80.0 + i % 400, "callback_ok": i % 10 != 0, "tokens": 10}

    batch = [result(i, "v1.0.0", i % 50 != 0) for i in range(700)] + [result(i, "v1.1.0", i % 4 != 0)
                                                                       for i in range(300)]
    url = f"{asgi_server.url}/api/traces/results?service=agent-infer&environment=staging"
    answer = post_results(url, batch, headers={"Authorization": f"Bearer {agent_key}"})
    assert answer == {"accepted": 1000, "rejected": 0, "errors": []}

    expected = {("v1.0.0", "ok"): 686, ("v1.0.0", "error"): 14, ("v1.1.0", "ok"): 225, ("v1.1.0", "error"): 75}
    promql = 'sum by (version, outcome) (agent_requests_total{service="agent-infer",env="staging"})'
    deadline = time.monotonic() + 30
    seen = {}
    while time.monotonic() < deadline:
        seen = {(dict(k)["version"], dict(k)["outcome"]): v for k, v in query(prometheus, promql).items()}
        if seen == expected:
            break
        time.sleep(0.5)
    assert seen == expected, f"Prometheus shows {seen}"

    tokens = query(prometheus, 'sum by (version) (agent_tokens_total{env="staging"})')
    assert {dict(k)["version"]: v for k, v in tokens.items()} == {"v1.0.0": 7000.0, "v1.1.0": 3000.0}
    # The SLA catalog's p95 query works on the exported histogram (same bucket bounds for every version).
    p95 = query(prometheus, 'histogram_quantile(0.95, sum by (version, le) '
                            '(agent_request_latency_seconds_bucket{env="staging"}))')
    assert {dict(k)["version"] for k in p95} == {"v1.0.0", "v1.1.0"}
    assert all(0.25 < v <= 0.5 for v in p95.values()), p95
