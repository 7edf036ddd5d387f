"""One real Prometheus per test session: backfilled scenario history plus a live in-process exporter."""

import shutil
import time
from datetime import datetime, timezone

import pytest

from sla.prometheus import PrometheusClient
from sla.testing import AgentExporter, OpenMetricsHistory, PrometheusProcess, VersionTraffic

HISTORY_S = 900
ENV = "test"
STABLE = "v1"
CANARY = "v2"


def scenario_traffic(service: str, **canary_overrides) -> list[VersionTraffic]:
    """Stable traffic for `service` (overrides under "stable"), plus a canary unless "absent" is set."""
    versions = [VersionTraffic(service, ENV, STABLE, **canary_overrides.pop("stable", {}))]
    if not canary_overrides.pop("absent", False):
        versions.append(VersionTraffic(service, ENV, CANARY, **canary_overrides))
    return versions


# Canary traffic per scenario service (the stable version v1 is always 20 req/s, 0.1 % errors, p95 500 ms).
SLOW = (0.0, 0.05, 0.15, 0.20, 0.25, 0.15, 0.12, 0.05, 0.03, 0.0)  # p95 ~900 ms: +80 %
SLIGHTLY_SLOW = (0.05, 0.15, 0.30, 0.25, 0.135, 0.05, 0.06, 0.003, 0.002, 0.0)  # p95 ~560 ms: +12.5 %
CANARY_TRAFFIC = {
    "healthy": {},
    "low-success": {"rps": 2.0, "error_rate": 0.03},
    "slow": {"latency_fractions": SLOW},
    "slightly-slow": {"latency_fractions": SLIGHTLY_SLOW},
    "many-failures": {"rps": 40.0, "error_rate": 0.005},
    "callback-anomaly": {"callback_error_rate": 0.03},
    "noisy-logs": {"log_errors_per_s": 1.0},
    "crashing": {"crashes": 4},
    "memory-bloat": {"rss_bytes": 500e6},
    "no-canary": {"absent": True},
    "low-traffic": {"rps": 0.1, "error_rate": 0.1},
    "shared-outage": {"rps": 40.0, "error_rate": 0.008, "stable": {"rps": 40.0, "error_rate": 0.008}},
    "turns-bad": {"onset_s_before_end": 30, "error_rate_after_onset": 0.05},
}

# Ramp-controller scenarios (Django tests): service -> canary traffic, in the "staging" environment of the persona
# fixtures, stable v1.0.0 (20 req/s, 0.1 % errors, p95 500 ms) against canary v1.1.0.
RAMP_ENV, RAMP_STABLE, RAMP_CANARY = "staging", "v1.0.0", "v1.1.0"
RAMP_TRAFFIC = {
    "ramp-healthy": {},
    "ramp-slow": {"latency_fractions": SLOW},
    "ramp-low-success": {"rps": 2.0, "error_rate": 0.03},
    "ramp-many-failures": {"rps": 40.0, "error_rate": 0.005},
    "ramp-callback": {"callback_error_rate": 0.03},
}


def ramp_traffic() -> list[VersionTraffic]:
    out = []
    for service, canary in RAMP_TRAFFIC.items():
        out.append(VersionTraffic(service, RAMP_ENV, RAMP_STABLE))
        out.append(VersionTraffic(service, RAMP_ENV, RAMP_CANARY, **canary))
    return out


@pytest.fixture(scope="session")
def prometheus_binaries():
    missing = [name for name in ("prometheus", "promtool") if shutil.which(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/setup-sla.sh")


@pytest.fixture(scope="session")
def exporter():
    server = AgentExporter()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def history_end() -> datetime:
    """Evaluation instant for backfilled scenarios: whole seconds, a little in the past."""
    return datetime.fromtimestamp(int(time.time()) - 120, timezone.utc)


@pytest.fixture(scope="session")
def prometheus(prometheus_binaries, exporter, history_end):
    process = PrometheusProcess(targets=[f"127.0.0.1:{exporter.port}"]).prepare()
    end = history_end.timestamp()
    history = OpenMetricsHistory(start=end - HISTORY_S, end=end, step_s=5)
    for service, overrides in CANARY_TRAFFIC.items():
        for traffic in scenario_traffic(service, **dict(overrides)):
            history.add(traffic)
    for traffic in ramp_traffic():
        history.add(traffic)
    try:
        process.backfill(history.text())
        process.start()
        yield process
    finally:
        process.stop()


@pytest.fixture
def prom(prometheus):
    client = PrometheusClient(prometheus.url, timeout_s=5)
    yield client
    client.close()
