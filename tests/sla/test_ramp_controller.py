"""The ramp controller against a real Prometheus (backfilled history, see conftest.RAMP_TRAFFIC).

Each test puts one canary of one scenario service at 5 % in staging, runs the controller at the end of the
history and checks what it did to the release, through which service and with which audit rows.
"""
from datetime import timedelta

import pytest

from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from releases.services import Actor
from sla import services
from sla.models import GateRecord, SlaReport, SlaSample
from sla.tasks import evaluate_gray_releases
from tests.sla.prometheus_fakes import free_port

from .conftest import RAMP_CANARY, RAMP_ENV

pytestmark = pytest.mark.django_db(transaction=True)
S = ReleaseStatus
def gate_audit(release: Release):
    return list(AuditEvent.objects.filter(release=release, actor_name="sla-gate").order_by("id"))


def test_healthy_gray_release_advances_5_to_10_through_release_promote(canary_of, history_end):
    release = canary_of("ramp-healthy")
    summary = services.gate_run(at=history_end)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 10)
    [promote] = gate_audit(release)
    assert (promote.action, promote.details["from_weight"], promote.details["to_weight"]) == ("release.promote", 5, 10)
    assert summary.applied[0].taken == "promoted 5 -> 10 %"
    record = GateRecord.objects.get(release=release)
    assert (record.status, record.action, record.sequence) == ("verified", "ready_to_promote", 1)

    # The next evaluation sees a new phase (just promoted): it watches instead of stepping again.
    services.gate_run(at=history_end + timedelta(seconds=1))
    release.refresh_from_db()
    assert release.gray_weight == 10
    record.refresh_from_db()
    assert (record.status, record.action, record.sequence) == ("watching", "hold", 2)
    # No sample for the new phase yet: the gate says how much evidence it still needs.
    assert any("needs about" in reason for reason in record.last_verdict["reasons"])
    assert "needs about" in record.last_verdict["summary"]


def test_slow_canary_is_rolled_back_by_the_gate(canary_of, history_end):
    release = canary_of("ramp-slow")
    services.gate_run(at=history_end)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.ROLLED_BACK, 0)
    [rollback] = gate_audit(release)
    assert rollback.action == "release.rollback" and "p95" in rollback.reason
    assert GateRecord.objects.get(release=release).status == "rollbacked"


def test_success_rate_below_99_percent_pauses_the_ramp(canary_of, history_end):
    release = canary_of("ramp-low-success")
    services.gate_run(at=history_end)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.PAUSED, 5)
    [pause] = gate_audit(release)
    assert pause.action == "release.pause" and "below the 99.00 % floor" in pause.reason
    # Still evaluated while paused (reports, charts), never paused twice.
    services.gate_run(at=history_end + timedelta(seconds=1))
    assert len(gate_audit(release)) == 1
    assert SlaSample.objects.filter(release=release).count() == 2


def test_fifty_failed_traces_block_the_version(canary_of, history_end):
    release = canary_of("ramp-many-failures")
    services.gate_run(at=history_end)
    release.refresh_from_db()
    assert release.status == S.BLOCKED
    [block] = gate_audit(release)
    assert block.action == "sla.block_version" and "blocked" in block.reason and "failed traces" in block.reason


def test_callback_failures_need_manual_review_without_moving_the_release(canary_of, history_end):
    release = canary_of("ramp-callback")
    services.gate_run(at=history_end)
    services.gate_run(at=history_end + timedelta(seconds=1))
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 5)
    record = GateRecord.objects.get(release=release)
    assert (record.status, record.action) == ("manual_review", "hold")
    [review] = gate_audit(release)  # raised once, not at every evaluation
    assert review.action == "sla.manual_review" and "callbacks failed 3.00 %" in review.reason


def test_prometheus_down_is_watching_with_the_error_then_manual_review(canary_of, history_end, settings):
    release = canary_of("ramp-healthy")
    settings.PROMETHEUS_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    services.gate_run(at=history_end)
    record = GateRecord.objects.get(release=release)
    assert (record.status, record.action, record.consecutive_errors) == ("watching", "hold", 1)
    assert "unreachable" in record.last_error
    services.gate_run(at=history_end + timedelta(seconds=1))
    record.refresh_from_db()
    assert (record.status, record.action, record.consecutive_errors) == ("manual_review", "hold", 2)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 5)
    assert [e.action for e in gate_audit(release)] == ["sla.manual_review"]


def test_an_evaluation_is_acted_on_once_even_when_delivered_twice(canary_of, history_end):
    release = canary_of("ramp-healthy")
    # Two deliveries read the same gate record and query Prometheus before either stores anything.
    first, second = services.gate_collect(), services.gate_collect()
    first_eval, second_eval = services.gate_evaluate(first, at=history_end), services.gate_evaluate(second,
                                                                                                   at=history_end)
    won = services.gate_apply(first[0], first_eval[0])
    lost = services.gate_apply(second[0], second_eval[0])
    assert (won.claimed, lost.claimed) == (True, False)
    release.refresh_from_db()
    assert release.gray_weight == 10
    assert [e.action for e in gate_audit(release)] == ["release.promote"]
    assert SlaSample.objects.filter(release=release).count() == 1

    # The Celery task delivered twice in a row: the second delivery only watches the new phase.
    evaluate_gray_releases.apply(kwargs={"at_ts": history_end.timestamp()})
    evaluate_gray_releases.apply(kwargs={"at_ts": history_end.timestamp()})
    release.refresh_from_db()
    assert release.gray_weight == 10
    assert [e.action for e in gate_audit(release)] == ["release.promote"]


def test_healthy_for_the_healthy_period_marks_the_release_healthy(canary_of, history_end, ops):
    release = canary_of("ramp-healthy")
    services.policy_version_save(actor=Actor.of(ops), environment=RAMP_ENV, service="ramp-healthy",
                                 policy={"healthy_after_s": "2s"}, comment="short healthy period for the test")
    services.gate_run(at=history_end)
    assert GateRecord.objects.get(release=release).healthy_at is None
    services.gate_run(at=history_end + timedelta(seconds=3))
    record = GateRecord.objects.get(release=release)
    assert record.healthy_at == history_end + timedelta(seconds=3)
    healthy = [e for e in gate_audit(release) if e.action == "sla.healthy"]
    assert len(healthy) == 1 and "production main path" in healthy[0].reason


def test_reports_store_the_design_shape_with_every_query(canary_of, history_end):
    release = canary_of("ramp-healthy")
    services.gate_run(at=history_end)
    report = SlaReport.objects.get(release=release)
    shape = report.design_shape()
    assert list(shape) == ["version", "start_ts", "agent_group", "success_rate", "p95_latency_ms",
                           "error_trace_ratio", "callback_fail_rate", "status", "action"]
    assert (shape["version"], shape["agent_group"], shape["status"], shape["action"]) == (
        RAMP_CANARY, f"ramp-healthy-{RAMP_ENV}", "verified", "ready_to_promote")
    assert 0.99 < shape["success_rate"] <= 1 and 400 <= shape["p95_latency_ms"] <= 600
    metrics = report.readings["canary"]["metrics"]
    assert metrics["trace_success_rate"]["window_s"] == 300
    # The query shown is this release's own (what a person pastes into Prometheus), not the batched one.
    assert 'version="v1.1.0"' in metrics["trace_success_rate"]["query"]
    assert "=~" not in metrics["trace_success_rate"]["query"]
    assert report.readings["baseline"]["metrics"]["request_count"]["value"] > 0
    assert all("query" in f for f in report.verdict["findings"])


def test_chart_samples_keep_canary_and_baseline_and_are_pruned(canary_of, history_end):
    release = canary_of("ramp-slow")
    services.gate_run(at=history_end)
    sample = SlaSample.objects.get(release=release)
    assert sample.canary_p95_ms > sample.baseline_p95_ms * 1.2
    assert sample.canary_success_rate is not None and sample.baseline_success_rate is not None
    assert services.history_prune(older_than_days=1) == 0
    SlaSample.objects.filter(pk=sample.pk).update(evaluated_at=history_end - timedelta(days=2))
    assert services.history_prune(older_than_days=1) == 1


def test_the_gate_refuses_to_query_prometheus_inside_a_transaction(canary_of):
    from django.db import transaction

    canary_of("ramp-healthy")
    candidates = services.gate_collect()
    with pytest.raises(RuntimeError, match="outside any database transaction"):
        with transaction.atomic():
            services.gate_evaluate(candidates)


def test_collecting_a_tick_costs_the_same_queries_for_one_or_many_gray_releases(canary_of, history_end):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    canary_of("ramp-healthy")
    with CaptureQueriesContext(connection) as one:
        assert len(services.gate_collect()) == 1
    for name in ("ramp-slow", "ramp-low-success", "ramp-callback"):
        canary_of(name)
    with CaptureQueriesContext(connection) as many:
        candidates = services.gate_collect()
    assert len(candidates) == 4 and len(many) == len(one)
    assert {c.gray.baseline_version for c in candidates} == {"v1.0.0"}


def test_a_tick_is_skipped_while_the_previous_one_runs(canary_of, history_end):
    from django.core.cache import cache

    from sla.tasks import TICK_LOCK

    release = canary_of("ramp-healthy")
    cache.add(TICK_LOCK, "running", timeout=60)
    try:
        summary = evaluate_gray_releases(history_end.timestamp())
    finally:
        cache.delete(TICK_LOCK)
    assert summary["skipped"] == "the previous gate tick is still running"
    assert not SlaSample.objects.filter(release=release).exists()
    assert evaluate_gray_releases(history_end.timestamp())["evaluated"] == 1


def test_quiet_verdicts_are_stored_in_one_batch_and_a_duplicate_delivery_stores_nothing(canary_of, history_end):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    releases = [canary_of(name) for name in ("ramp-healthy", "ramp-slow", "ramp-callback")]
    services.gate_run(at=history_end)  # first evaluations: reports, actions
    candidates = [c for c in services.gate_collect() if c.status == S.GRAY]
    evaluations = services.gate_evaluate(candidates, at=history_end + timedelta(seconds=1))
    pairs = [(c, e) for c, e in zip(candidates, evaluations) if services._quiet(c, e)]
    assert pairs, [e.verdict.action for e in evaluations]
    with CaptureQueriesContext(connection) as queries:
        applied = services.gate_apply_quiet(pairs)
    assert all(a.claimed for a in applied) and len(queries) <= 5  # BEGIN, claim, samples, COMMIT
    again = services.gate_apply_quiet(pairs)  # the same evaluations delivered twice
    assert not any(a.claimed for a in again)
    for candidate, _ in pairs:
        record = GateRecord.objects.get(release_id=candidate.release_id)
        assert record.sequence == candidate.sequence + 1
        assert SlaSample.objects.filter(release_id=candidate.release_id, sequence=record.sequence).count() == 1
    assert {r.pk for r in releases} >= {c.release_id for c, _ in pairs}
