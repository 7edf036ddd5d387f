"""One real Prometheus per test session: backfilled scenario history plus a live in-process exporter."""

import shutil
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from releases.choices import ReleaseStatus
from releases.models import AgentService, Release
from releases.services import Actor, release_create, release_promote, release_worker_transition
from sla import services
from sla.models import GateRecord
from sla.prometheus import PrometheusClient
from tests.sla.prometheus_fakes import AgentExporter, OpenMetricsHistory, PrometheusProcess, VersionTraffic

from ..conftest import sha

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
    # Healthy canaries with too little traffic for evidence (issue 11): 0.5 and 2 req/s against 20 on stable.
    "underpowered-slow-trickle": {"rps": 0.5},
    "underpowered-trickle": {"rps": 2.0},
}

# Stale-baseline scenario (issue 11): v1.0.0 was live long ago (no traffic now), v1.1.0 is the stable serving
# staging, v1.2.0 ramps; its p95 is far above v1.1.0's.
STALE_SERVICE = "ramp-stale"
STALE_TRAFFIC = [("v1.1.0", {}), ("v1.2.0", {"latency_fractions": SLOW})]

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
    for version, overrides in STALE_TRAFFIC:
        history.add(VersionTraffic(STALE_SERVICE, RAMP_ENV, version, **overrides))
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


# --- ramp controller (Django) fixtures ----------------------------------------------------------------------

S = ReleaseStatus
GATE_POLICY = {"evaluation_window_s": 300, "evaluation_interval_s": 60, "first_snapshot_within_s": 60,
               "healthy_after_s": 600, "prometheus_errors_before_manual_review": 2}


@pytest.fixture
def gate(settings, prometheus, environments, ops):
    """The staging SLA policy for the scenarios, and PROMETHEUS_URL pointing at the test Prometheus."""
    settings.PROMETHEUS_URL = prometheus.url
    services.policy_version_save(actor=Actor.of(ops), environment=RAMP_ENV, policy=GATE_POLICY, comment="tests")
    return prometheus


def _ready(release: Release) -> None:
    assert release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                     actor_name="pipeline", action="pipeline.succeeded")


PRIMED_S = 240


def prime_phase(release: Release, at: datetime) -> None:
    """Set-up: the gate first looked at the release's phase at `at` (it evaluates every few seconds), so the
    phase's sample starts there.  Stores only what that first look records: the canary's raw counters."""
    [candidate] = [c for c in services.gate_collect() if c.release_id == release.pk]
    [evaluation] = services.gate_evaluate([candidate], at=at)
    totals = evaluation.canary.counter_totals
    assert totals is not None, "the backfilled history has no counters for this canary"
    state = replace(candidate.state, phase_mark=totals, phase_mark_at=at)
    GateRecord.objects.filter(pk=release.pk).update(state=state.to_dict())


@pytest.fixture
def canary_of(gate, rm, dev, history_end):
    """canary_of("ramp-slow") -> v1.1.0 of that service at 5 % in staging, with v1.0.0 live, phase 10 min old,
    first looked at by the gate PRIMED_S before the end of the history (prime=False: never looked at)."""

    def make(service_name: str, *, prime: bool = True) -> Release:
        AgentService.objects.create(name=service_name, image_repository=f"registry.example.com/agent/{service_name}")
        stable = release_create(actor=Actor.of(dev), service=service_name, environment=RAMP_ENV, tag=RAMP_STABLE,
                                commit=sha())
        _ready(stable)
        release_promote(actor=Actor.of(rm), release_id=stable.pk)
        canary = release_create(actor=Actor.of(dev), service=service_name, environment=RAMP_ENV, tag=RAMP_CANARY,
                                commit=sha())
        _ready(canary)
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
        # The canary went to 5 % ten minutes before the end of the history (test set-up, not a transition).
        Release.objects.filter(pk=canary.pk).update(status_changed_at=history_end - timedelta(seconds=600))
        canary.refresh_from_db()
        assert (canary.status, canary.gray_weight) == (S.GRAY, 5)
        if prime:
            prime_phase(canary, history_end - timedelta(seconds=PRIMED_S))
        return canary

    return make
