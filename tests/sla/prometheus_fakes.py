"""A real Prometheus for tests and benchmarks: a process on 127.0.0.1, an in-process exporter, backfilled history.

Not used in production code paths.  `prometheus` and `promtool` come from the Debian package (installed by
scripts/setup-sla.sh).
"""

from __future__ import annotations

import bisect
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

LATENCY_BOUNDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0)
RELEASE_LABELS = ("service", "env", "version")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AgentExporter:
    """The metrics contract of sla.catalog, served from this process; tests drive the numbers.

    A custom collector rather than prometheus_client Counter/Histogram objects: benchmarks add thousands of
    traces per tick, and a Histogram can only observe one value at a time.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: dict[tuple, float] = defaultdict(float)  # (service, env, version, outcome)
        self._buckets: dict[tuple, list[float]] = {}  # (service, env, version) -> per-bucket counts
        self._latency_sum: dict[tuple, float] = defaultdict(float)
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self.port = free_port()
        self._server, self._thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def record(self, service: str, env: str, version: str, *, ok: float, errors: float,
               latency_s: float = 0.25) -> None:
        """Add traces, all with latency `latency_s`."""
        key = (service, env, version)
        index = bisect.bisect_left(LATENCY_BOUNDS, latency_s)
        with self._lock:
            self._requests[key + ("ok",)] += ok
            self._requests[key + ("error",)] += errors
            buckets = self._buckets.setdefault(key, [0.0] * (len(LATENCY_BOUNDS) + 1))
            buckets[index] += ok + errors
            self._latency_sum[key] += (ok + errors) * latency_s

    def collect(self):
        with self._lock:
            requests_family = CounterMetricFamily("agent_requests", "traces", labels=RELEASE_LABELS + ("outcome",))
            for labels, value in self._requests.items():
                requests_family.add_metric(labels, value)
            latency = HistogramMetricFamily("agent_request_latency_seconds", "trace latency", labels=RELEASE_LABELS)
            for labels, per_bucket in self._buckets.items():
                cumulative, running = [], 0.0
                for bound, count in zip([str(b) for b in LATENCY_BOUNDS] + ["+Inf"], per_bucket):
                    running += count
                    cumulative.append((bound, running))
                latency.add_metric(labels, cumulative, self._latency_sum[labels])
        yield requests_family
        yield latency

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class PrometheusProcess:
    """`prometheus` on a free loopback port with a temporary TSDB, scraping `targets` every second."""

    targets: list[str] = field(default_factory=list)
    scrape_interval_s: int = 1
    port: int = 0
    workdir: Path | None = None
    _process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tsdb_path(self) -> Path:
        return self.workdir / "tsdb"

    def prepare(self) -> "PrometheusProcess":
        self.workdir = Path(tempfile.mkdtemp(prefix="rollgate-prom-"))
        self.tsdb_path.mkdir()
        self.port = free_port()
        targets = ", ".join(f"'{t}'" for t in self.targets)
        (self.workdir / "prometheus.yml").write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval_s}s\n"
            f"  evaluation_interval: {self.scrape_interval_s}s\n"
            "scrape_configs:\n"
            "  - job_name: agents\n"
            "    honor_labels: true\n"
            f"    static_configs: [{{targets: [{targets}]}}]\n"
        )
        return self

    def backfill(self, openmetrics_text: str) -> None:
        """Write history into the TSDB before start (promtool tsdb create-blocks-from openmetrics)."""
        source = self.workdir / "history.om"
        source.write_text(openmetrics_text)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.tsdb_path)],
                       check=True, capture_output=True, timeout=120)

    def start(self, *, ready_timeout_s: float = 30) -> "PrometheusProcess":
        self._process = subprocess.Popen(
            ["prometheus", f"--config.file={self.workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.tsdb_path}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=30d", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "prometheus.log", "wb"),
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {ready_timeout_s}s")

    def wait_for_series(self, query: str, *, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            answer = requests.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=2).json()
            if answer.get("data", {}).get("result"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"no series for {query} after {timeout_s}s")

    def outage(self) -> None:
        """Stop the server but keep its TSDB and port: `start()` brings it back (an outage, not a new one)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------------
# Synthetic history (OpenMetrics text for promtool)
# ------------------------------------------------------------------------------------------------------------

BASELINE_LATENCY = (0.05, 0.15, 0.30, 0.25, 0.15, 0.05, 0.03, 0.015, 0.005, 0.0)  # per bucket; p95 = 0.5 s


@dataclass
class VersionTraffic:
    """Constant-rate traffic of one version over the synthetic history; `onset_*` switch the error rate."""

    service: str
    env: str
    version: str
    rps: float = 20.0
    error_rate: float = 0.001
    latency_fractions: tuple = BASELINE_LATENCY  # per bucket of LATENCY_BOUNDS + (+Inf)
    callback_rps: float = 10.0
    callback_error_rate: float = 0.001
    log_errors_per_s: float = 0.0
    crashes: int = 0  # crashes during the last minute of history
    rss_bytes: float = 200e6
    tokens_per_request: float = 500.0
    onset_s_before_end: float | None = None
    error_rate_after_onset: float = 0.0


class OpenMetricsHistory:
    """Builds counters for many versions between `start` and `end` (unix seconds) at `step_s`."""

    def __init__(self, *, start: float, end: float, step_s: float = 5.0):
        self.start, self.end, self.step_s = start, end, step_s
        self.families: dict[str, tuple[str, list[str]]] = {}

    def _times(self):
        t = self.start
        while t <= self.end + 1e-9:
            yield t
            t += self.step_s

    def _add(self, family: str, kind: str, line: str):
        self.families.setdefault(family, (kind, []))[1].append(line)

    def add(self, traffic: VersionTraffic) -> None:
        base = f'service="{traffic.service}",env="{traffic.env}",version="{traffic.version}"'
        onset = None if traffic.onset_s_before_end is None else self.end - traffic.onset_s_before_end
        cumulative_bounds = [str(b) for b in LATENCY_BOUNDS] + ["+Inf"]
        cumulative_fractions = []
        running = 0.0
        for fraction in traffic.latency_fractions:
            running += fraction
            cumulative_fractions.append(min(running, 1.0))
        cumulative_fractions[-1] = 1.0
        for t in self._times():
            elapsed = t - self.start
            total = traffic.rps * elapsed
            if onset is not None and t > onset:
                before = traffic.rps * (onset - self.start)
                errors = before * traffic.error_rate + (total - before) * traffic.error_rate_after_onset
            else:
                errors = total * traffic.error_rate
            ts = f"{t:.3f}"
            self._add("agent_requests", "counter", f'agent_requests_total{{{base},outcome="ok"}} {total - errors:.3f} {ts}')
            self._add("agent_requests", "counter", f'agent_requests_total{{{base},outcome="error"}} {errors:.3f} {ts}')
            for bound, fraction in zip(cumulative_bounds, cumulative_fractions):
                self._add("agent_request_latency_seconds", "histogram",
                          f'agent_request_latency_seconds_bucket{{{base},le="{bound}"}} {total * fraction:.3f} {ts}')
            callbacks = traffic.callback_rps * elapsed
            failed_callbacks = callbacks * traffic.callback_error_rate
            self._add("agent_callback", "counter",
                      f'agent_callback_total{{{base},outcome="ok"}} {callbacks - failed_callbacks:.3f} {ts}')
            self._add("agent_callback", "counter", f'agent_callback_total{{{base},outcome="error"}} {failed_callbacks:.3f} {ts}')
            self._add("agent_tokens", "counter", f"agent_tokens_total{{{base}}} {total * traffic.tokens_per_request:.3f} {ts}")
            self._add("agent_log_errors", "counter", f"agent_log_errors_total{{{base}}} {traffic.log_errors_per_s * elapsed:.3f} {ts}")
            crashes = traffic.crashes if t > self.end - 60 else 0
            self._add("agent_crashes", "counter", f"agent_crashes_total{{{base}}} {crashes} {ts}")
            self._add("process_resident_memory_bytes", "gauge",
                      f"process_resident_memory_bytes{{{base}}} {traffic.rss_bytes:.0f} {ts}")

    def text(self) -> str:
        out = []
        for family, (kind, lines) in self.families.items():
            out.append(f"# TYPE {family} {kind}")
            # promtool wants each series' samples together and in time order
            out.extend(sorted(lines, key=lambda line: (line.rsplit(" ", 2)[0], float(line.rsplit(" ", 1)[1]))))
        out.append("# EOF")
        return "\n".join(out) + "\n"
