"""Issue 11: the faults found in the gate on scenarios it had never seen, one test each, against real Prometheus.

Live tests drive the in-process exporter in lockstep with the gate: each step adds a batch of traces, waits
until Prometheus has scraped them, then evaluates.  Bounds are stated in steps (traces), not seconds, so the
tests say what the gate needs as evidence and stay independent of the machine's speed.
"""
import math
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import requests

from releases.choices import ReleaseStatus
from releases.errors import InvalidInput
from releases.models import AgentService, AuditEvent, Release
from releases.services import Actor, release_create, release_promote, release_worker_transition
from sla import services
from sla.gate import evaluate_many
from sla.models import GateRecord
from sla.policy import SlaPolicy
from sla.prometheus import PrometheusClient
from tests.sla.prometheus_fakes import AgentExporter, PrometheusProcess
from sla.verdict import GateState, GrayRelease

from ..conftest import sha
from .conftest import ENV, PRIMED_S, RAMP_ENV, STALE_SERVICE, prime_phase

S = ReleaseStatus

# A fixed latency shape: 20 traces at the 2.5 %, 7.5 %, ... 97.5 % quantiles of lognormal(ln 250 ms, 0.45).
_Z = (-1.96, -1.44, -1.15, -0.93, -0.76, -0.6, -0.45, -0.32, -0.19, -0.06, 0.06, 0.19, 0.32, 0.45, 0.6, 0.76,
      0.93, 1.15, 1.44, 1.96)
LATENCY_SHAPE = tuple(0.25 * math.exp(0.45 * z) for z in _Z)


def fired(verdict) -> set[str]:
    return {f.rule for f in verdict.findings if f.effect is not None}


def explained(verdict) -> str:
    return verdict.summary + "\n" + "\n".join(verdict.reasons)


class Lockstep:
    """Traffic for one service's canary and stable, added in steps that Prometheus has scraped before the
    gate looks (bounded waits)."""

    def __init__(self, prometheus, exporter, service: str, *, canary="v2", stable="v1"):
        self.prometheus, self.exporter, self.service = prometheus, exporter, service
        self.canary, self.stable = canary, stable
        self.sent = 0.0

    def step(self, *, canary_n: int, stable_n: int, canary_errors: float = 0.001, stable_errors: float = 0.001,
             canary_latency_scale: float = 1.0) -> datetime:
        for version, n, error_rate, scale in ((self.canary, canary_n, canary_errors, canary_latency_scale),
                                              (self.stable, stable_n, stable_errors, 1.0)):
            per_point = n / len(LATENCY_SHAPE)
            for latency in LATENCY_SHAPE:
                errors = per_point * error_rate
                self.exporter.record(self.service, ENV, version, ok=per_point - errors, errors=errors,
                                     latency_s=latency * scale)
        self.sent += canary_n
        self._wait_scraped()
        return datetime.now(timezone.utc)

    def _wait_scraped(self, timeout_s: float = 10) -> None:
        query = f'sum(agent_requests_total{{service="{self.service}",version="{self.canary}"}})'
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = requests.get(f"{self.prometheus.url}/api/v1/query", params={"query": query},
                                  timeout=2).json()["data"]["result"]
            if result and float(result[0]["value"][1]) >= self.sent - 1e-6:
                time.sleep(0.05)
                return
            time.sleep(0.1)
        raise TimeoutError(f"Prometheus did not scrape {self.service} within {timeout_s} s")


def _evaluate(client, policy, release, state, at):
    [verdict] = evaluate_many(client, lambda r: policy, [(release, state)], at=at)
    return verdict


def _fresh_state(at: datetime) -> GateState:
    return GateState(deployed_at=at - timedelta(hours=1), phase_started_at=at - timedelta(hours=1))


# --- 1. stale baseline --------------------------------------------------------------------------------------


def _ready(release):
    assert release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                     actor_name="pipeline", action="pipeline.succeeded")


@pytest.mark.django_db(transaction=True)
def test_baseline_is_the_release_serving_now_not_the_one_recorded_at_creation(gate, rm, dev, history_end):
    """v1.1.0 and v1.2.0 are created while v1.0.0 is live; v1.1.0 then goes live; v1.2.0 ramps. The gate must
    compare v1.2.0 with v1.1.0 (which has traffic and is fast), not with v1.0.0 (no traffic any more)."""
    AgentService.objects.create(name=STALE_SERVICE, image_repository=f"registry.example.com/agent/{STALE_SERVICE}")

    def create(tag):
        return release_create(actor=Actor.of(dev), service=STALE_SERVICE, environment=RAMP_ENV, tag=tag,
                              commit=sha())

    old = create("v1.0.0")
    _ready(old)
    release_promote(actor=Actor.of(rm), release_id=old.pk)
    middle, canary = create("v1.1.0"), create("v1.2.0")
    assert middle.previous_release_id == old.pk and canary.previous_release_id == old.pk
    _ready(middle)
    release_promote(actor=Actor.of(rm), release_id=middle.pk)
    release_promote(actor=Actor.of(rm), release_id=middle.pk, full=True, expected_weight=5)
    middle.refresh_from_db()
    assert middle.status == S.LIVE
    _ready(canary)
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    Release.objects.filter(pk=canary.pk).update(status_changed_at=history_end - timedelta(seconds=600))
    prime_phase(canary, history_end - timedelta(seconds=PRIMED_S))

    [candidate] = [c for c in services.gate_collect() if c.release_id == canary.pk]
    assert candidate.gray.baseline_version == "v1.1.0"
    services.gate_run(at=history_end)
    canary.refresh_from_db()
    record = GateRecord.objects.get(release=canary)
    assert canary.status == S.ROLLED_BACK, record.last_verdict["reasons"]
    assert "v1.1.0" in record.last_verdict["summary"] and "v1.0.0" not in record.last_verdict["summary"]


# --- 2. an error-rate drop pauses; a paused canary that keeps failing is blocked --------------------------------


@pytest.mark.parametrize("canary_n, stable_n, error_rate, block_after", [
    (60, 140, 0.03, 40),
    (150, 50, 0.02, 80),
])
def test_error_rate_drop_pauses_then_a_paused_canary_that_keeps_failing_is_blocked(
        prometheus, exporter, canary_n, stable_n, error_rate, block_after):
    service = f"drop-{canary_n}-{block_after}"
    policy = SlaPolicy(evaluation_window_s=30, evaluation_interval_s=5, min_sample_size=100,
                       block_failed_traces=block_after)
    release = GrayRelease(service, ENV, "v2", "v1")
    traffic = Lockstep(prometheus, exporter, service)
    client = PrometheusClient(prometheus.url)
    try:
        at = traffic.step(canary_n=canary_n, stable_n=stable_n)
        state = _fresh_state(at)
        for _ in range(3):  # healthy
            verdict = _evaluate(client, policy, release, state, traffic.step(canary_n=canary_n, stable_n=stable_n))
            assert verdict.action in ("hold", "ready_to_promote"), explained(verdict)
            state = verdict.next_state
        stop = None
        for _ in range(30):  # bounded: the canary now fails `error_rate` of its traces
            at = traffic.step(canary_n=canary_n, stable_n=stable_n, canary_errors=error_rate)
            verdict = _evaluate(client, policy, release, state, at)
            state = verdict.next_state
            if verdict.action not in ("hold", "ready_to_promote"):
                stop = verdict
                break
        assert stop is not None, "the failing canary was never stopped"
        assert (stop.status, stop.action) == ("blocked", "pause"), explained(stop)
        assert fired(stop) & {"error_regression_sequential", "success_floor_sequential", "success_rate_floor"}
        assert "ramp paused at" in stop.summary

        # The controller paused it: a new phase, judged as paused from now on.
        paused = replace(release, paused=True)
        state = state.entering_phase(at)
        blocked = None
        for _ in range(40):
            verdict = _evaluate(client, policy, paused, state,
                                traffic.step(canary_n=canary_n, stable_n=stable_n, canary_errors=error_rate))
            state = verdict.next_state
            assert verdict.action in ("pause", "block_version"), explained(verdict)
            if verdict.action == "block_version":
                blocked = verdict
                break
        assert blocked is not None, "a paused canary that keeps failing was never blocked"
        [finding] = [f for f in blocked.findings if f.rule == "failed_traces"]
        assert "since the ramp was paused" in finding.text and finding.measured >= block_after
    finally:
        client.close()


# --- 3. a latency regression after a full healthy window is decided within a bound ----------------------------


@pytest.mark.parametrize("canary_n, stable_n, scale, max_steps", [
    (200, 200, 1.25, 10),
    (120, 280, 1.40, 10),
])
def test_latency_regression_after_a_full_healthy_window_is_rolled_back_within_a_few_steps(
        prometheus, exporter, canary_n, stable_n, scale, max_steps):
    """The window (30 s here, 10 min by default) is full of healthy data when the canary slows down.  A
    decision comes within `max_steps` steps (about a third of the window); at the default 10-minute window only
    the sequential test can be that fast (bench/sla_gate.py: latency_regression_decision_s)."""
    service = f"slow-{canary_n}-{int(scale * 100)}"
    window = 30
    policy = SlaPolicy(evaluation_window_s=window, evaluation_interval_s=5, min_sample_size=100)
    release = GrayRelease(service, ENV, "v2", "v1")
    traffic = Lockstep(prometheus, exporter, service)
    client = PrometheusClient(prometheus.url)
    try:
        began = traffic.step(canary_n=canary_n, stable_n=stable_n)
        state = _fresh_state(began)
        while True:  # bounded by the window: one full window of healthy traffic
            at = traffic.step(canary_n=canary_n, stable_n=stable_n)
            verdict = _evaluate(client, policy, release, state, at)
            assert verdict.action in ("hold", "ready_to_promote"), explained(verdict)
            state = verdict.next_state
            if (at - began).total_seconds() > window + 2:
                break
        for step in range(1, max_steps + 1):
            verdict = _evaluate(client, policy, release, state,
                                traffic.step(canary_n=canary_n, stable_n=stable_n, canary_latency_scale=scale))
            state = verdict.next_state
            if verdict.action == "rollback":
                break
        assert verdict.action == "rollback", f"not decided within {max_steps} steps\n" + explained(verdict)
        assert fired(verdict) & {"latency_regression_sequential", "p95_latency_rollback"}, explained(verdict)
        assert "rolled back at" in verdict.summary
        [sequential] = [f for f in verdict.findings if f.rule == "latency_regression_sequential"]
        assert sequential.measured > 0, "the sequential test accumulates evidence from the first slow step"
    finally:
        client.close()


# --- 4. an underpowered healthy canary keeps watching, and says how much more it needs -------------------------


@pytest.mark.parametrize("service, rps", [("underpowered-slow-trickle", 0.5), ("underpowered-trickle", 2.0)])
@pytest.mark.parametrize("power, significance", [(0.8, 0.05), (0.9, 0.01)])
def test_underpowered_healthy_canary_keeps_watching_with_how_many_more_requests(
        prom, history_end, service, rps, power, significance):
    """The phase has run for an hour (phase age alone would promote); the canary sent `rps` req/s since the
    gate first looked at the phase 4 minutes ago: too few traces to have seen a drop below the floor."""
    policy = SlaPolicy(evaluation_window_s=300, evaluation_interval_s=60, power=power, significance=significance)
    release = GrayRelease(service, ENV, "v2", "v1")
    first = _evaluate(prom, policy, release, _fresh_state(history_end), history_end - timedelta(seconds=PRIMED_S))
    verdict = _evaluate(prom, policy, release, first.next_state, history_end)
    assert (verdict.status, verdict.action, verdict.outcome.value) == ("watching", "hold", "LOW_TRAFFIC"), \
        explained(verdict)
    [power_finding] = [f for f in verdict.findings if f.rule == "evidence_power"]
    have, needed = power_finding.measured, power_finding.threshold
    assert have == pytest.approx(rps * PRIMED_S, rel=0.05)
    assert needed > have
    more = needed - have
    assert f"needs about {more:,.0f} more requests" in verdict.summary
    minutes = more / rps / 60
    assert (f"about {round(minutes)} minutes" in verdict.summary if minutes < 90 else "hours" in verdict.summary)
    assert "phase_duration" not in {f.rule for f in verdict.findings}, "phase age is not the reason it waits"


def test_stricter_evidence_needs_more_requests(prom, history_end):
    release = GrayRelease("underpowered-trickle", ENV, "v2", "v1")
    needed = []
    for power, significance in ((0.6, 0.2), (0.8, 0.05), (0.95, 0.01)):
        policy = SlaPolicy(evaluation_window_s=300, power=power, significance=significance)
        first = _evaluate(prom, policy, release, _fresh_state(history_end), history_end - timedelta(seconds=60))
        verdict = _evaluate(prom, policy, release, first.next_state, history_end)
        [finding] = [f for f in verdict.findings if f.rule == "evidence_power"]
        needed.append(finding.threshold)
    assert needed == sorted(needed) and len(set(needed)) == 3


# --- 5. manual review sticks until a person acknowledges it -------------------------------------------------


def test_manual_review_is_not_cleared_by_the_gate(prom, history_end):
    policy = SlaPolicy(evaluation_window_s=300, evaluation_interval_s=60)
    first = _evaluate(prom, policy, GrayRelease("callback-anomaly", ENV, "v2", "v1"), _fresh_state(history_end),
                      history_end - timedelta(seconds=PRIMED_S))
    assert first.status == "manual_review" and first.next_state.manual_review, explained(first)
    # The callbacks recover (judged on the healthy service's readings): the review stays.
    healthy = GrayRelease("healthy", ENV, "v2", "v1")
    later = _evaluate(prom, policy, healthy, first.next_state, history_end)
    assert (later.status, later.action) == ("manual_review", "hold"), explained(later)
    assert "manual_review_pending" in fired(later) and "waits for a person" in later.summary
    # After a person's acknowledgement the gate judges again.
    settled = _evaluate(prom, policy, healthy, later.next_state.acknowledged(), history_end)
    assert settled.status in ("verified", "watching") and settled.next_state.manual_review is None


@pytest.mark.django_db(transaction=True)
def test_manual_review_waits_for_a_person_in_the_controller_and_is_audited_once(canary_of, history_end, rm):
    release = canary_of("ramp-callback")
    services.gate_run(at=history_end)
    services.gate_run(at=history_end + timedelta(seconds=30))
    record = GateRecord.objects.get(release=release)
    assert record.status == "manual_review" and record.state["manual_review"]
    reviews = AuditEvent.objects.filter(release=release, action="sla.manual_review")
    assert reviews.count() == 1
    sequence = record.sequence
    services.gate_acknowledge(actor=Actor.of(rm), release_id=release.pk, decision="resume",
                              comment="callbacks fixed downstream")
    record.refresh_from_db()
    assert record.state["manual_review"] is None and record.sequence == sequence + 1
    ack = AuditEvent.objects.get(release=release, action="sla.manual_review.acknowledge")
    assert ack.actor_name == rm.username and ack.details["decision"] == "resume"
    assert f"manual review settled by {rm.username}" in record.last_verdict["summary"]
    with pytest.raises(InvalidInput, match="at most"):  # refused, never cut
        services.gate_acknowledge(actor=Actor.of(rm), release_id=release.pk, decision="resume", comment="x" * 5000)


# --- 6. a scrape gap, then recovery: no promotion until the window refills ---------------------------------


def test_after_a_prometheus_outage_nothing_promotes_until_a_full_fresh_window():
    """Own exporter and Prometheus (restarted on the same storage).  Release A is evaluated throughout (the
    gate sees the outage as errors); release B is first evaluated after the recovery (only the hole in the
    scrapes tells)."""
    window = 12
    policy = SlaPolicy(evaluation_window_s=window, evaluation_interval_s=1, min_sample_size=100,
                       max_scrape_gap_s=3, prometheus_errors_before_manual_review=100)
    exporter = AgentExporter()
    prometheus = PrometheusProcess(targets=[f"127.0.0.1:{exporter.port}"], scrape_interval_s=1).prepare()
    a, b = GrayRelease("gap-a", ENV, "v2", "v1"), GrayRelease("gap-b", ENV, "v2", "v1")
    traffic = {r.service: Lockstep(prometheus, exporter, r.service) for r in (a, b)}

    def step():
        for lockstep in traffic.values():
            lockstep.step(canary_n=150, stable_n=150)
        return datetime.now(timezone.utc)

    try:
        prometheus.start()
        client = PrometheusClient(prometheus.url, timeout_s=1)
        state_a = _fresh_state(step())
        for _ in range(window + 2):
            verdict = _evaluate(client, policy, a, state_a, step())
            state_a = verdict.next_state
        outage_began = datetime.now(timezone.utc)
        prometheus.outage()
        for _ in range(5):  # traffic goes on; nothing is scraped; the gate gets errors
            for lockstep in traffic.values():
                for version in ("v1", "v2"):
                    exporter.record(lockstep.service, ENV, version, ok=150, errors=0)
                lockstep.sent += 150
            verdict = _evaluate(client, policy, a, state_a, datetime.now(timezone.utc))
            assert verdict.outcome.value == "PROMETHEUS_ERROR"
            state_a = verdict.next_state
            time.sleep(1)
        prometheus.start()
        recovered = datetime.now(timezone.utc)
        state_b = None
        promoted = {}
        for _ in range(4 * window):  # bounded
            at = step()
            state_b = state_b or _fresh_state(at)
            for release, state in ((a, state_a), (b, state_b)):
                verdict = _evaluate(client, policy, release, state, at)
                if release is a:
                    state_a = verdict.next_state
                else:
                    state_b = verdict.next_state
                if verdict.action == "ready_to_promote":
                    promoted.setdefault(release.service, at)
                elif at - timedelta(seconds=window) < recovered:
                    assert fired(verdict) & {"fresh_window", "scrape_gap", "evidence_power"}, explained(verdict)
            if len(promoted) == 2:
                break
        client.close()
    finally:
        prometheus.stop()
        exporter.stop()
    assert set(promoted) == {"gap-a", "gap-b"}, "both promote once the window is fresh"
    for service, at in promoted.items():
        assert (at - recovered).total_seconds() >= window - 1, f"{service} promoted on a window with a hole"
    assert outage_began < recovered


# --- 7. the query shown with a finding returns this release's one series -------------------------------------


def test_each_shown_query_returns_one_series_for_this_release(prom, history_end):
    policy = SlaPolicy(evaluation_window_s=300, evaluation_interval_s=60)
    checked = 0
    for service in ("healthy", "slow", "many-failures", "callback-anomaly", "memory-bloat", "crashing"):
        release = GrayRelease(service, ENV, "v2", "v1")
        first = _evaluate(prom, policy, release, _fresh_state(history_end), history_end - timedelta(seconds=60))
        verdict = _evaluate(prom, policy, release, first.next_state, history_end)
        for finding in verdict.findings:
            if not finding.query:
                continue
            series = prom.instant(finding.query, window_s=300, at=history_end)
            assert len(series) == 1, (finding.rule, finding.query)
            assert "=~" not in finding.query and f'service="{service}"' in finding.query
            checked += 1
    assert checked >= 30
