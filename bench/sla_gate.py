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
                          of them per call (16 HTTP queries per call).  Goal >= 50.
  latency_regression_decision_s
                          real Prometheus (1 s scrape), default policy (10-minute window): canary and stable at
                          200 req/s each, healthy for 10 minutes (--healthy-s), then every canary latency x 1.25
                          (p95 +25 %); seconds from the onset to the first rollback verdict.  Goal <= 60.
  floor_breach_decision_s same Prometheus and run: canary success 99.9 % -> 98.5 % at 200 req/s (stable stays at
                          99.9 %); seconds to the first stop verdict, whose action must be pause
                          (floor_breach_action prints it with the rules that decided).  Goal <= 30.
  floor_breach_shared_stable_decision_s
                          the same breach on canary AND stable (nothing to regress against): only the floor tests
                          can pause it.  No goal in the issue; printed so the floor test's own speed is known.
  underpowered_promote_rate
                          SIMULATED: 100 healthy canaries at 0.5-3 req/s (stable 20 req/s) evaluated every 10 s for
                          90 minutes, default policy with a 60 s evaluation interval; share of runs promoted while
                          the canary's sample since the phase began was below the power criterion, re-derived
                          here independently from the documented formula.  Goal 0.
  false_pause_rate        the healthy canaries of false_rollback_rate: share with any pause verdict.  Goal <= 0.02.
  quality_regression_decision_s
                          real Prometheus (1 s scrape) scraping routing/metrics.py's exposition of trace results
                          (the same aggregation /metrics/traces serves): 100 traces/s, 5 % on the canary, every
                          trace succeeds with the same latency, tools and cost; eval scores ~ N(0.82, 0.1) on both,
                          then the canary's mean drops to 0.74; seconds from the drop to the first stop verdict
                          (default policy; quality_regression_action prints it).  Goal <= 60.
The first-stop figures count the first verdict that stops the canary (pause, block_version or rollback): an
error regression pauses by default (design table), so bad_canary_decision_s is the time to that pause.
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
STOP_ACTIONS = ("pause", "block_version", "rollback")


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
            if verdict.action in STOP_ACTIONS:
                if onset["t"] is None:
                    raise AssertionError(f"stopped before the onset: {verdict.reasons}")
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
    """Per-second counts of one version, summed over the policy window as the gate's queries do."""

    def __init__(self, window_s: int):
        self.window = deque(maxlen=window_s)
        self.total_requests = 0.0
        self.total_failures = 0.0
        self.total_buckets = np.zeros(len(BOUNDS))

    def add(self, requests: int, failures: int, buckets: np.ndarray):
        self.window.append((requests, failures, buckets))
        self.total_requests += requests
        self.total_failures += failures
        self.total_buckets = self.total_buckets + buckets

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
            latency_bucket_totals=tuple(zip(BOUNDS.tolist(), np.cumsum(self.total_buckets).tolist())),
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


def bench_false_stops(runs: int) -> tuple[float, float, float]:
    policy = SlaPolicy()
    rollbacks = pauses = stops = 0
    for seed in range(runs):
        actions = healthy_run(1000 + seed, policy)
        rollbacks += "rollback" in actions
        pauses += "pause" in actions
        stops += bool(actions & set(STOP_ACTIONS))
    return rollbacks / runs, pauses / runs, stops / runs


# --------------------------------------------------------------------------------------------------------------
# 2b. underpowered healthy canaries: never promoted before the power criterion holds
# --------------------------------------------------------------------------------------------------------------

def _enough_evidence(n_c: float, base_failed: float, base_total: float, policy: SlaPolicy,
                     stable_buckets: list) -> bool:
    """The documented power criterion, written out again here (not sla.stats.required_sample)."""
    from scipy.stats import norm

    z_a, z_b = norm.isf(policy.significance), norm.ppf(policy.power)

    def detects(p_s, p_1, n_s):
        if n_c <= 0 or n_s <= 0 or p_1 <= p_s:
            return False
        spread0 = (p_s * (1 - p_s) * (1 / n_c + 1 / n_s)) ** 0.5
        spread1 = (p_1 * (1 - p_1) / n_c + p_s * (1 - p_s) / n_s) ** 0.5
        return z_a * spread0 + z_b * spread1 <= p_1 - p_s

    errors_ok = detects((base_failed + 0.5) / (base_total + 1), 1 - policy.pause_below_success_rate, base_total)
    cumulative = np.array([c for _, c in stable_buckets])
    p95 = _histogram_quantile(0.95, cumulative)
    total = cumulative[-1]

    def share_above(x):
        index = int(np.searchsorted(BOUNDS, x))
        lower = 0.0 if index == 0 else BOUNDS[index - 1]
        below = 0.0 if index == 0 else cumulative[index - 1]
        upper_count = cumulative[index]
        inside = (upper_count - below) * (x - lower) / (BOUNDS[index] - lower) if np.isfinite(BOUNDS[index]) else 0
        return 1 - (below + inside) / total

    latency_ok = detects(share_above(p95), share_above(p95 / (1 + policy.advance_max_p95_increase)), total)
    return errors_ok and latency_ok


def underpowered_run(seed: int, policy: SlaPolicy, *, duration_s: int = 5400, step_s: int = 10) -> tuple[bool, bool]:
    """(promoted before the criterion held, promoted at all) for one healthy low-traffic canary."""
    rng = np.random.default_rng(seed)
    window = int(policy.evaluation_window_s)
    rps = float(rng.uniform(0.5, 3.0))
    canary, baseline = SimulatedVersion(window), SimulatedVersion(window)
    start = datetime(2025, 5, 2, 23, 15, tzinfo=timezone.utc)
    state = GateState(deployed_at=start - timedelta(hours=1), phase_started_at=start - timedelta(hours=1))
    release = GrayRelease("sim", ENV, "v2", "v1")
    phase_start_requests = None
    for second in range(duration_s):
        for version, rate in ((canary, rps), (baseline, 20.0)):
            n = int(rng.poisson(rate))
            failures = int(rng.binomial(n, 0.001))
            latencies = rng.lognormal(np.log(0.25), 0.45, size=n)
            buckets = np.bincount(np.searchsorted(BOUNDS, latencies), minlength=len(BOUNDS))[: len(BOUNDS)]
            version.add(n, failures, buckets.astype(float))
        if second % step_s == 0 and second > 0:
            at = start + timedelta(seconds=second)
            canary_readings = canary.readings(at, window)
            baseline_readings = baseline.readings(at, window)
            verdict = evaluate(policy, canary_readings, baseline_readings, state, release=release)
            if phase_start_requests is None:
                phase_start_requests = verdict.next_state.phase_mark.requests
            state = verdict.next_state
            if verdict.action == "ready_to_promote":
                sample = canary.total_requests - phase_start_requests
                base_total = baseline_readings.value(Metric.REQUEST_COUNT)
                base_failed = baseline_readings.value(Metric.FAILED_REQUEST_COUNT)
                ok = _enough_evidence(sample, base_failed, base_total, policy, list(baseline_readings.latency_buckets))
                return (not ok), True
    return False, False


def bench_underpowered(runs: int) -> tuple[float, float]:
    policy = SlaPolicy(evaluation_interval_s=60)
    early = promoted = 0
    for seed in range(runs):
        before, at_all = underpowered_run(5000 + seed, policy)
        early += before
        promoted += at_all
    return early / runs, promoted / runs


# --------------------------------------------------------------------------------------------------------------
# 2c. latency regression and floor breach after a long healthy period, live
# --------------------------------------------------------------------------------------------------------------

def bench_live_onsets(*, healthy_s: float, limit_s: float = 240.0) -> dict[str, tuple[float, str]]:
    """Three services in one Prometheus, healthy for `healthy_s`, then the onsets at the same instant:
    "lat" (canary latencies x 1.25), "floor" (canary 99.9 % -> 98.5 %, stable stays 99.9 %) and "floor-shared"
    (canary AND stable 99.9 % -> 98.5 %: no regression against stable, only the floor tests can pause it)."""
    exporter = AgentExporter()
    prometheus = PrometheusProcess(targets=[f"127.0.0.1:{exporter.port}"], scrape_interval_s=1).prepare()
    rng = np.random.default_rng(7)
    onset = {"t": None}
    stop = threading.Event()
    tick_s = 0.1
    representative = [b if np.isfinite(b) else 5.0 for b in BOUNDS]

    def add(service, version, rps, error_rate, scale):
        n = int(rng.poisson(rps * tick_s))
        errors = int(rng.binomial(n, error_rate))
        latencies = rng.lognormal(np.log(0.25), 0.45, size=n) * scale
        counts = np.bincount(np.searchsorted(BOUNDS, latencies), minlength=len(BOUNDS))[: len(BOUNDS)]
        failed_left = errors
        for bound, count in zip(representative, counts):
            if count:
                bad = min(failed_left, int(count))
                failed_left -= bad
                exporter.record(service, ENV, version, ok=int(count) - bad, errors=bad, latency_s=bound)

    def drive():
        while not stop.is_set():
            bad = onset["t"] is not None
            add("lat", "v2", 200, 0.001, 1.25 if bad else 1.0)
            add("lat", "v1", 200, 0.001, 1.0)
            add("floor", "v2", 200, 0.015 if bad else 0.001, 1.0)
            add("floor", "v1", 200, 0.001, 1.0)
            add("floor-shared", "v2", 200, 0.015 if bad else 0.001, 1.0)
            add("floor-shared", "v1", 200, 0.015 if bad else 0.001, 1.0)
            stop.wait(tick_s)

    policy = SlaPolicy()
    releases = {name: GrayRelease(name, ENV, "v2", "v1") for name in ("lat", "floor", "floor-shared")}
    driver = threading.Thread(target=drive, daemon=True)
    try:
        prometheus.start()
        driver.start()
        prometheus.wait_for_series('agent_requests_total{service="floor"}', timeout_s=20)
        client = PrometheusClient(prometheus.url)
        start = now_utc()
        states = {name: GateState(deployed_at=start - timedelta(minutes=30), phase_started_at=start - timedelta(minutes=30))
                  for name in releases}
        decided: dict[str, tuple[float, str]] = {}
        began = time.monotonic()
        while time.monotonic() - began < healthy_s + limit_s and len(decided) < len(releases):
            if onset["t"] is None and time.monotonic() - began >= healthy_s:
                onset["t"] = time.monotonic()
            names = [n for n in releases if n not in decided]
            verdicts = evaluate_many(client, lambda r: policy, [(releases[n], states[n]) for n in names], at=now_utc())
            for name, verdict in zip(names, verdicts):
                states[name] = verdict.next_state
                if verdict.action in STOP_ACTIONS:
                    if onset["t"] is None:
                        raise AssertionError(f"{name} stopped before the onset: {verdict.summary}")
                    rules = sorted({f.rule for f in verdict.findings if f.effect is not None
                                    and f.effect.action == verdict.action})
                    decided[name] = (time.monotonic() - onset["t"], f"{verdict.action}({'+'.join(rules)})")
            time.sleep(1.0)
        client.close()
    finally:
        stop.set()
        if driver.is_alive():
            driver.join(timeout=2)
        prometheus.stop()
        exporter.stop()
    return decided


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
        # The phases began before the history: every canary trace counts as the phase's evidence.
        state = GateState(deployed_at=at - timedelta(hours=1), phase_started_at=at - timedelta(hours=1),
                          phase_mark=CounterTotals(0.0, 0.0), phase_mark_at=at - timedelta(hours=1))
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


# --------------------------------------------------------------------------------------------------------------
# 4. LLM answer quality regression, live, through the trace-results exporter
# --------------------------------------------------------------------------------------------------------------

def bench_quality_regression(*, healthy_s: float, limit_s: float = 180.0) -> tuple[float, str]:
    import http.server

    from rollgate_client.results import TraceResult
    from routing import metrics as trace_metrics

    rng = np.random.default_rng(11)
    raw: dict[str, float] = {}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            with lock:
                body = trace_metrics.render({k: str(v) for k, v in raw.items()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    prometheus = PrometheusProcess(targets=[f"127.0.0.1:{server.server_address[1]}"], scrape_interval_s=1).prepare()
    onset = {"t": None}
    stop = threading.Event()
    tick_s = 0.1
    number = [0]

    def traces(version: str, count: int, mean: float):
        out = []
        for score in np.clip(rng.normal(mean, 0.1, size=count), 0, 1):
            number[0] += 1
            out.append(TraceResult(trace_id=f"t{number[0]}", agent_id="a", version=version, ok=True,
                                   latency_ms=float(rng.lognormal(np.log(250), 0.4)), tokens=900,
                                   eval_score=float(score), tool_calls=3, tool_errors=int(rng.random() < 0.02),
                                   steps=int(rng.integers(2, 7)), ttft_ms=float(rng.lognormal(np.log(200), 0.3)),
                                   tokens_in=700, tokens_out=200, cost=0.002))
        return out

    def drive():
        while not stop.is_set():
            batch = traces("v2", int(rng.poisson(5 * tick_s)), 0.74 if onset["t"] is not None else 0.82)
            batch += traces("v1", int(rng.poisson(95 * tick_s)), 0.82)
            ints, sums = trace_metrics.aggregate("quality", ENV, batch)
            with lock:
                for field, amount in list(ints.items()) + list(sums.items()):
                    raw[field] = raw.get(field, 0) + amount
            stop.wait(tick_s)

    policy = SlaPolicy()
    release = GrayRelease("quality", ENV, "v2", "v1")
    driver = threading.Thread(target=drive, daemon=True)
    try:
        prometheus.start()
        driver.start()
        prometheus.wait_for_series('agent_eval_score_count{service="quality"}', timeout_s=20)
        client = PrometheusClient(prometheus.url)
        start = now_utc()
        state = GateState(deployed_at=start - timedelta(minutes=30), phase_started_at=start - timedelta(minutes=30))
        began = time.monotonic()
        try:
            while time.monotonic() - began < healthy_s + limit_s:
                if onset["t"] is None and time.monotonic() - began >= healthy_s:
                    onset["t"] = time.monotonic()
                [verdict] = evaluate_many(client, lambda r: policy, [(release, state)], at=now_utc())
                state = verdict.next_state
                if verdict.action in STOP_ACTIONS:
                    if onset["t"] is None:
                        raise AssertionError(f"stopped before the drop: {verdict.summary}")
                    rules = sorted({f.rule for f in verdict.findings if f.effect is not None
                                    and f.effect.action == verdict.action})
                    return time.monotonic() - onset["t"], f"{verdict.action}({'+'.join(rules)})"
                time.sleep(1.0)
        finally:
            client.close()
        return float("inf"), "none"
    finally:
        stop.set()
        if driver.is_alive():
            driver.join(timeout=2)
        prometheus.stop()
        server.shutdown()
        server.server_close()


PARTS = ("bad", "false", "underpowered", "live", "throughput", "quality")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs (smoke test of the benchmark)")
    parser.add_argument("--healthy-s", type=float, default=600.0,
                        help="healthy seconds before the latency and floor onsets (default 600)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts")
    args = parser.parse_args()

    if "bad" in args.only:
        decisions = bench_bad_canary(1 if args.quick else 3)
        print(f"bad_canary_decision_s {statistics.median(decisions):.2f}")
        print(f"bad_canary_decision_s_max {max(decisions):.2f}")

    if "false" in args.only:
        false_rollback, false_pause, false_stop = bench_false_stops(20 if args.quick else 200)
        print(f"false_rollback_rate {false_rollback:.4f}")
        print(f"false_pause_rate {false_pause:.4f}")
        print(f"false_stop_rate {false_stop:.4f}")

    if "underpowered" in args.only:
        early, promoted = bench_underpowered(20 if args.quick else 100)
        print(f"underpowered_promote_rate {early:.4f}")
        print(f"underpowered_promoted_within_90_min {promoted:.4f}")

    if "live" in args.only:
        decided = bench_live_onsets(healthy_s=60 if args.quick else args.healthy_s)
        for name, figure in (("lat", "latency_regression"), ("floor", "floor_breach"),
                             ("floor-shared", "floor_breach_shared_stable")):
            seconds, action = decided.get(name, (float("inf"), "none"))
            print(f"{figure}_decision_s {seconds:.2f}")
            print(f"{figure}_action {action}")

    if "throughput" in args.only:
        print(f"evaluations_per_s {bench_throughput(200, 3 if args.quick else 10):.1f}")

    if "quality" in args.only:
        seconds, action = bench_quality_regression(healthy_s=30 if args.quick else 90)
        print(f"quality_regression_decision_s {seconds:.2f}")
        print(f"quality_regression_action {action}")


if __name__ == "__main__":
    main()
