"""SLA API: the design's /monitor/agent-sla-report, per-release verdicts, QA lists and CSV, versioned policies."""
import csv
import io

import pytest

from releases.models import AuditEvent
from sla import services
from sla.models import SlaPolicyVersion, SlaReport

from ..conftest import client_for
from .conftest import RAMP_CANARY, RAMP_ENV

DESIGN_KEYS = ["version", "start_ts", "agent_group", "success_rate", "p95_latency_ms", "error_trace_ratio",
               "callback_fail_rate", "status", "action"]


@pytest.fixture
def evaluated(canary_of, history_end):
    """Two scenario canaries evaluated once: ramp-healthy (verified) and ramp-slow (rollbacked)."""
    healthy, slow = canary_of("ramp-healthy"), canary_of("ramp-slow")
    services.gate_run(at=history_end)
    return healthy, slow


@pytest.mark.django_db(transaction=True)
def test_monitor_report_serves_the_design_shape_for_a_version(evaluated, qa):
    client = client_for(qa)
    answer = client.get("/monitor/agent-sla-report", {"version": RAMP_CANARY, "service": "ramp-healthy"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert list(body) == DESIGN_KEYS
    assert (body["version"], body["status"], body["action"]) == (RAMP_CANARY, "verified", "ready_to_promote")
    assert answer["X-Rollgate-Service"] == "ramp-healthy"

    slow = client.get("/monitor/agent-sla-report", {"version": RAMP_CANARY, "service": "ramp-slow"}).json()
    assert (slow["status"], slow["action"]) == ("rollbacked", "rollback")


@pytest.mark.django_db(transaction=True)
def test_monitor_report_names_a_missing_or_bad_version(evaluated, qa, nobody):
    client = client_for(qa)
    missing = client.get("/monitor/agent-sla-report")
    assert missing.status_code == 400 and "version" in missing.json()["errors"]
    bad = client.get("/monitor/agent-sla-report", {"version": "v1 ; drop"})
    assert bad.status_code == 400 and "version" in bad.json()["detail"]
    unknown = client.get("/monitor/agent-sla-report", {"version": "v9.9.9"})
    assert unknown.status_code == 404 and "v9.9.9" in unknown.json()["detail"]
    assert client_for(nobody).get("/monitor/agent-sla-report", {"version": RAMP_CANARY}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_release_sla_gives_the_verdict_with_reasons_and_chart_series(evaluated, rm):
    healthy, _ = evaluated
    body = client_for(rm).get(f"/api/releases/{healthy.pk}/sla/").json()
    assert (body["gate"]["status"], body["gate"]["action_taken"]) == ("verified", "promoted 5 -> 10 %")
    assert body["verdict"]["reasons"] and all(f["query"] for f in body["verdict"]["findings"] if f["measured"]
                                              is not None and f["rule"] not in ("phase_duration", "evidence_power"))
    series = body["series"]
    assert len(series["at"]) == 1 and series["gray_weight"] == [5]
    assert series["canary_success_rate"][0] > 0.99 and series["baseline_p95_ms"][0] > 0
    assert client_for(rm).get("/api/releases/999999/sla/").status_code == 404


def streamed(response) -> str:
    """The body of a streamed export, read as the ASGI server reads it (asynchronously, chunk by chunk)."""
    from asgiref.sync import async_to_sync

    assert response.streaming and response.is_async

    async def read():
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)().decode()


@pytest.mark.django_db(transaction=True)
def test_reports_list_filters_and_exports_csv(evaluated, qa):
    client = client_for(qa)
    rows = client.get("/api/sla/reports/", {"status": "rollbacked"}).json()
    assert [(r["service"], r["status"]) for r in rows] == [("ramp-slow", "rollbacked")]
    assert len(client.get("/api/sla/reports/", {"version": RAMP_CANARY, "environment": RAMP_ENV}).json()) == 2
    assert client.get("/api/sla/reports/", {"environment": "prod"}).json() == []
    bad = client.get("/api/sla/reports/", {"status": "exploded"})
    assert bad.status_code == 400 and "status" in bad.json()["detail"] and "verified" in bad.json()["detail"]

    from django.core.cache import cache

    cache.delete(f"sla-report-export:{qa.pk}")  # a lock an interrupted earlier run may have left (60 s)
    for url, params in (("/api/sla/reports.csv", {}), ("/api/sla/reports/", {"format": "csv"})):
        answer = client.get(url, {**params, "service": "ramp-healthy"})
        assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(streamed(answer))))
        assert [(r["version"], r["status"], r["action"]) for r in table] == [(RAMP_CANARY, "verified",
                                                                            "ready_to_promote")]
        assert "success rate" in table[0]["reasons"]
    running = client.get("/api/sla/reports.csv")
    second = client.get("/api/sla/reports.csv")
    assert second.status_code == 409 and "still running" in second.content.decode()
    assert len(list(csv.DictReader(io.StringIO(streamed(running))))) == SlaReport.objects.count()
    assert streamed(client.get("/api/sla/reports.csv")).startswith("id,version,")  # the lock was let go

    detail = client.get(f"/api/sla/reports/{rows[0]['id']}/").json()
    assert detail["window_s"] == 300 and detail["report"]["status"] == "rollbacked"
    assert any(f["rule"] == "p95_latency_rollback" and f["fired"] and "histogram_quantile" in f["query"]
               for f in detail["findings"])


@pytest.mark.django_db
def test_policies_are_versioned_audited_and_validated(environments, service, ops, qa):
    client = client_for(ops)
    first = client.put("/api/sla/policies/staging/", {"policy": {"evaluation_interval_s": "5m"}, "comment": "a"},
                       format="json")
    assert first.status_code == 200, first.content
    assert (first.json()["number"], first.json()["policy"]["evaluation_interval_s"]) == (1, 300.0)
    second = client.put("/api/sla/policies/staging/", {"policy": {"advance_min_success_rate": 0.999}}, format="json")
    assert second.json()["number"] == 2 and [v["number"] for v in second.json()["versions"]] == [2, 1]
    # a full environment policy: fields missing from version 2 are back to the defaults
    assert second.json()["policy"]["evaluation_interval_s"] == 600

    override = client.put("/api/sla/policies/staging/?service=agent-infer",
                          {"policy": {"min_sample_size": 50}, "comment": "low-traffic service"}, format="json")
    body = override.json()
    assert (body["number"], body["overrides"], body["policy"]["min_sample_size"],
            body["policy"]["advance_min_success_rate"]) == (1, {"min_sample_size": 50}, 50, 0.999)

    audit = AuditEvent.objects.filter(action="sla.policy.update").order_by("id")
    assert [(e.actor_name, e.to_state) for e in audit] == [("ops", "v1"), ("ops", "v2"), ("ops", "v1")]
    assert audit[1].details["changed"]["advance_min_success_rate"] == {"from": 0.995, "to": 0.999}

    invalid = client.put("/api/sla/policies/staging/",
                         {"policy": {"pause_below_success_rate": 1.5, "min_sample_size": "many", "colour": "red"}},
                         format="json")
    assert invalid.status_code == 400
    errors = invalid.json()["errors"]["policy"]
    assert set(errors) == {"pause_below_success_rate", "min_sample_size", "colour"}
    assert "between 0 and 1" in errors["pause_below_success_rate"][0]
    assert SlaPolicyVersion.objects.filter(environment__name="staging", service=None).count() == 2

    # An environment change that would break a service override names the service's field.
    broken = client.put("/api/sla/policies/staging/", {"policy": {"advance_min_success_rate": 0.9,
                                                                  "pause_below_success_rate": 0.85}}, format="json")
    assert broken.status_code == 200
    clash = client.put("/api/sla/policies/staging/?service=agent-infer",
                       {"policy": {"pause_below_success_rate": 0.95}}, format="json")
    assert clash.status_code == 400 and "pause_below_success_rate" in clash.json()["errors"]["policy"]

    assert client_for(qa).get("/api/sla/policies/staging/").status_code == 200
    refused = client_for(qa).put("/api/sla/policies/staging/", {"policy": {}}, format="json")
    assert refused.status_code == 403 and "ops" in refused.json()["detail"]
    assert client.get("/api/sla/policies/nowhere/").status_code == 404
    ghost = client.get("/api/sla/policies/staging/", {"service": "ghost"})  # one shape for unknown names
    assert ghost.status_code == 404 and "known services:" in ghost.json()["detail"]
    assert client.put("/api/sla/policies/staging/", {"policy": [1, 2]}, format="json").status_code == 400
