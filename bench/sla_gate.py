"""SLA gate benchmark: decision speed on a bad canary, false rollbacks on healthy ones, batched throughput.

    PYTHONPATH=. /work/main/.venv/bin/python bench/sla_gate.py [--quick]

Prints:
  bad_canary_decision_s   real Prometheus (1 s scrape) + in-process exporter; canary 50 req/s at a 5 % gray
                          share (stable 950 req/s), error rate 0.1 % -> 5 %; seconds from the onset to the first
                          rollback verdict, median of 3 runs (also _max).  Goal <= 10.
  false_rollback_rate     SIMULATED counter streams (no Prometheus) fed through the same sla.verdict.evaluate:
                          200 healthy canaries, 10 min each, evaluated every 2 s with the default policy.
                          Noise: Poisson traffic with a slow rate wobble, per-run canary error rate
                          baseline x lognormal(0, 0.15), shared downstream error bursts, bucketed lognormal
                          latencies.  Goal <= 0.01.  (false_stop_rate also counts pause/block_version.)
  evaluations_per_s       real Prometheus with 200 gray releases backfilled (promtool), evaluate_many over all
                          of them per call (14 HTTP queries per call).  Goal >= 50.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sla.catalog import Metric  # noqa: E402
from sla.gate import evaluate_many  # noqa: E402
from sla.policy import SlaPolicy  # noqa: E402
from sla.prometheus import PrometheusClient, Reading  # noqa: E402
from sla.stats import CounterTotals  # noqa: E402
from tests.sla.prometheus_fakes import (  # noqa: E402
    LATENCY_BOUNDS, AgentExporter, OpenMetricsHistory, PrometheusProcess, VersionTraffic,
)
from sla.verdict import GateState, GrayRelease, ReleaseReadings, evaluate  # noqa: E402

ENV = "bench"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------------------------------------------
# 1. bad canary, live
# --------------------------------------------------------------------------------------------------------------

def bad_canary_run(prometheus: PrometheusProcess, exporter: AgentExporter, service: str, seed: int,
                   *, healthy_s: float = 8.0, limit_s: float = 30.0) -> float | None:
    rng = np.random.default_rng(seed)
    policy = SlaPolicy()  # default policy: the sequential test is what must react
    release = GrayRelease(service, ENV, "v2", "v1")
    stop = threading.Event()
    onset = {"t": None}
    tick_s = 0.1

    def drive():
        while not stop.is_set():
            canary_error = 0.05 if onset["t"] is not None else 0.001
            cn, bn = rng.poisson(50 * tick_s), rng.poisson(950 * tick_s)
            ce, be = rng.binomial(cn, canary_error), rng.binomial(bn, 0.001)
            exporter.record(service, ENV, "v2", ok=cn - ce, errors=ce)
            exporter.record(service, ENV, "v1", ok=bn - be, errors=be)
            stop.wait(tick_s)

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    client = PrometheusClient(prometheus.url)
    try:
        prometheus.wait_for_series(f'agent_requests_total{{service="{service}"}}', timeout_s=20)
        start = now_utc()
        state = GateState(deployed_at=start - timedelta(minutes=30), phase_started_at=start - timedelta(minutes=30))
        began = time.monotonic()
        while time.monotonic() - began < healthy_s + limit_s:
            if onset["t"] is None and time.monotonic() - began >= healthy_s:
                onset["t"] = time.monotonic()
            [verdict] = evaluate_many(client, lambda r: policy, [(release, state)], at=now_utc())
            state = verdict.next_state
            if verdict.action == "rollback":
                if onset["t"] is None:
                    raise AssertionError(f"rolled back before the onset: {verdict.reasons}")
                return time.monotonic() - onset["t"]
            time.sleep(0.5)
        return None
    finally:
        stop.set()
        driver.join(timeout=2)
        client.close()


def bench_bad_canary(runs: int) -> list[float]:
    exporter = AgentExporter()
    prometheus = PrometheusProcess(targets=[f"127.0.0.1:{exporter.port}"], scrape_interval_s=1).prepare()
    try:
        prometheus.start()
        results = []
        for run in range(runs):
            decided = bad_canary_run(prometheus, exporter, f"bad-{run}", seed=run)
            results.append(float("inf") if decided is None else decided)
        return results
    finally:
        prometheus.stop()
        exporter.stop()


# --------------------------------------------------------------------------------------------------------------
# 2. healthy canaries, simulated counter streams through the same evaluate()
# --------------------------------------------------------------------------------------------------------------

BOUNDS = np.array(LATENCY_BOUNDS + (np.inf,))


class SimulatedVersion:
    """Per-second counts of one version, windowed like Prometheus increase() over the policy window."""

    def __init__(self, window_s: int):
        self.window = deque(maxlen=window_s)
        self.total_requests = 0.0
        self.total_failures = 0.0

    def add(self, requests: int, failures: int, buckets: np.ndarray):
        self.window.append((requests, failures, buckets))
        self.total_requests += requests
        self.total_failures += failures

    def readings(self, at: datetime, window_s: int) -> ReleaseReadings:
        requests = float(sum(w[0] for w in self.window))
        failures = float(sum(w[1] for w in self.window))
        per_bucket = np.sum([w[2] for w in self.window], axis=0)
        cumulative = np.cumsum(per_bucket)
        p95 = _histogram_quantile(0.95, cumulative)

        def reading(value):
            return Reading(value, "simulated", window_s, at)

        metrics = {
            Metric.REQUEST_COUNT: reading(requests),
            Metric.FAILED_REQUEST_COUNT: reading(failures),
            Metric.TRACE_SUCCESS_RATE: reading(1 - failures / requests if requests else None),
            Metric.TRACE_LATENCY_P95: reading(p95),
            Metric.LOG_ERROR_COUNT: reading(0.0),
        }
        return ReleaseReadings(
            at=at, metrics=metrics,
            latency_buckets=tuple(zip(BOUNDS.tolist(), cumulative.tolist())),
            counter_totals=CounterTotals(self.total_requests, self.total_failures),
        )


def _histogram_quantile(q: float, cumulative: np.ndarray) -> float | None:
    """Prometheus' linear interpolation inside the bucket."""
    total = cumulative[-1]
    if total <= 0:
        return None
    rank = q * total
    index = int(np.searchsorted(cumulative, rank))
    if index >= len(LATENCY_BOUNDS):
        return LATENCY_BOUNDS[-1]
    lower = 0.0 if index == 0 else LATENCY_BOUNDS[index - 1]
    below = 0.0 if index == 0 else cumulative[index - 1]
    in_bucket = cumulative[index] - below
    return lower + (LATENCY_BOUNDS[index] - lower) * ((rank - below) / in_bucket if in_bucket else 1.0)


def healthy_run(seed: int, policy: SlaPolicy, *, duration_s: int = 600, step_s: int = 2) -> set[str]:
    """Actions taken on one healthy canary over one phase."""
    rng = np.random.default_rng(seed)
    window = int(policy.evaluation_window_s)
    canary, baseline = SimulatedVersion(window), SimulatedVersion(window)
    base_error = 0.001
    canary_error = base_error * rng.lognormal(0.0, 0.15)  # healthy: same rate up to run-to-run noise
    start = datetime(2025, 5, 2, 23, 15, tzinfo=timezone.utc)
    state = GateState(deployed_at=start - timedelta(hours=1), phase_started_at=start)
    release = GrayRelease("sim", ENV, "v2", "v1")
    burst_until = -1
    actions = set()
    for second in range(duration_s):
        wobble = 1.0 + 0.2 * np.sin(2 * np.pi * (second / 300.0 + rng.random() * 0.01))
        if burst_until < second and rng.random() < 1 / 600:  # ~one shared downstream blip per phase
            burst_until = second + int(rng.integers(3, 8))
        shared = 0.01 if second <= burst_until else 0.0
        for version, rps, error in ((canary, 50, canary_error), (baseline, 950, base_error)):
            n = int(rng.poisson(rps * wobble))
            failures = int(rng.binomial(n, min(1.0, error + shared)))
            latencies = rng.lognormal(np.log(0.25), 0.45, size=n)
            buckets = np.bincount(np.searchsorted(BOUNDS, latencies), minlength=len(BOUNDS))[: len(BOUNDS)]
            version.add(n, failures, buckets.astype(float))
        if second % step_s == 0 and second > 0:
            at = start + timedelta(seconds=second)
            verdict = evaluate(policy, canary.readings(at, window), baseline.readings(at, window), state,
                               release=release)
            state = verdict.next_state
            actions.add(verdict.action)
    return actions


def bench_false_rollbacks(runs: int) -> tuple[float, float]:
    policy = SlaPolicy()
    rollbacks = stops = 0
    for seed in range(runs):
        actions = healthy_run(1000 + seed, policy)
        rollbacks += "rollback" in actions
        stops += bool(actions & {"rollback", "pause", "block_version"})
    return rollbacks / runs, stops / runs


# --------------------------------------------------------------------------------------------------------------
# 3. throughput against real Prometheus
# --------------------------------------------------------------------------------------------------------------

def bench_throughput(releases_count: int, repeats: int) -> float:
    end = int(time.time()) - 30
    history = OpenMetricsHistory(start=end - 330, end=end, step_s=10)
    for i in range(releases_count):
        history.add(VersionTraffic(f"svc-{i}", ENV, "v1"))
        history.add(VersionTraffic(f"svc-{i}", ENV, "v2"))
    prometheus = PrometheusProcess(targets=[]).prepare()
    try:
        prometheus.backfill(history.text())
        prometheus.start()
        at = datetime.fromtimestamp(end, timezone.utc)
        state = GateState(deployed_at=at - timedelta(hours=1), phase_started_at=at - timedelta(hours=1))
        releases = [(GrayRelease(f"svc-{i}", ENV, "v2", "v1"), state) for i in range(releases_count)]
        policy = SlaPolicy(evaluation_window_s=300)
        client = PrometheusClient(prometheus.url)
        try:
            verdicts = evaluate_many(client, lambda r: policy, releases, at=at)  # warm-up and sanity check
            assert all(v.action == "ready_to_promote" for v in verdicts), verdicts[0].reasons
            began = time.perf_counter()
            for _ in range(repeats):
                evaluate_many(client, lambda r: policy, releases, at=at)
            elapsed = time.perf_counter() - began
        finally:
            client.close()
        return releases_count * repeats / elapsed
    finally:
        prometheus.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs (smoke test of the benchmark)")
    args = parser.parse_args()

    decisions = bench_bad_canary(1 if args.quick else 3)
    print(f"bad_canary_decision_s {statistics.median(decisions):.2f}")
    print(f"bad_canary_decision_s_max {max(decisions):.2f}")

    false_rollback, false_stop = bench_false_rollbacks(20 if args.quick else 200)
    print(f"false_rollback_rate {false_rollback:.4f}")
    print(f"false_stop_rate {false_stop:.4f}")

    print(f"evaluations_per_s {bench_throughput(200, 3 if args.quick else 10):.1f}")


if __name__ == "__main__":
    main()
