"""SLA gate v2 over the API: settling a sticky manual review (POST /api/releases/<id>/sla/acknowledge/), the
verdict sentence and the pending review in the release's SLA answer, and QA's snapshot list filtered by action.

No Prometheus here: the gate record is written directly with the state the gate would have stored."""
import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from releases.services import Actor, release_pause, release_promote
from sla.findings import GateState
from sla.models import GateRecord, SlaReport

from ..conftest import client_for
from .test_sla_api import streamed

S = ReleaseStatus
SINCE = datetime(2026, 11, 29, 12, 48, 20, tzinfo=timezone.utc)
REVIEW = {"since": SINCE.isoformat(), "reason": "callback failure rate 3.10 % > 2.00 %: output channel anomaly"}
SUMMARY = ("v1.1.0 callback failures 3.10 % of 1,204 callbacks: manual review needed, the ramp holds until a "
           "person decides (12:48:20)")


def gate_record(release: Release, *, manual_review: dict | None = REVIEW, summary: str = SUMMARY,
                findings: list | None = None) -> GateRecord:
    """The gate's record of `release` as the gate would have stored it (manual_review=None: nothing waits)."""
    state = GateState(deployed_at=SINCE - timedelta(minutes=10), phase_started_at=SINCE - timedelta(minutes=10),
                      manual_review=manual_review)
    status, action = ("manual_review", "hold") if manual_review else ("watching", "hold")
    findings = findings if findings is not None else [
        {"rule": "callback_failure_rate", "fired": True, "effect": "hold", "unit": "ratio", "measured": 0.031,
         "threshold": 0.02, "text": "callback failure rate 3.10 % > 2.00 %: output channel anomaly",
         "query": 'sum(rate(agent_callback_total{service="agent-infer",env="staging",version="v1.1.0"}[300s]))'},
        {"rule": "p95_latency_rollback", "fired": False, "effect": None, "unit": "ms", "measured": 1234,
         "threshold": 1500, "text": "p95 1,234 ms <= 1,500 ms", "query": None},
        {"rule": "evidence_power", "fired": False, "effect": None, "unit": "count", "measured": 12345,
         "threshold": 6789, "text": "enough evidence", "query": None},
    ]
    verdict = {"at": SINCE.isoformat(), "outcome": "EVALUATED", "status": status, "action": action,
               "summary": summary, "healthy": False, "reasons": [f["text"] for f in findings], "findings": findings,
               "report": None}
    return GateRecord.objects.create(release=release, sequence=3, state=state.to_dict(), evaluated_weight=5,
                                     status=status, action=action, outcome="EVALUATED", last_verdict=verdict,
                                     evaluated_at=SINCE)


@pytest.fixture
def canary(live_release, make_release, rm):
    """v1.1.0 of agent-infer at 5 % in staging, with v1.0.0 live."""
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 5)
    return release


@pytest.fixture
def waiting(canary):
    gate_record(canary)
    return canary


def acknowledge(user, release_id, **body):
    return client_for(user).post(f"/api/releases/{release_id}/sla/acknowledge/", body, format="json")


def pending(release) -> dict | None:
    return GateRecord.objects.get(pk=release.pk).state.get("manual_review")


@pytest.mark.django_db
def test_acknowledge_needs_a_comment_and_a_known_decision_naming_the_field(waiting, rm):
    for body in ({"decision": "resume"}, {"decision": "resume", "comment": "   "}):
        answer = acknowledge(rm, waiting.pk, **body)
        assert answer.status_code == 400, answer.content
        assert list(answer.json()["errors"]) == ["comment"] and "comment" in answer.json()["detail"]
    bad = acknowledge(rm, waiting.pk, decision="later", comment="looked at it")
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["decision"]
    assert "resume, rollback" in bad.json()["detail"] and bad.json()["code"] == "invalid"
    typo = acknowledge(rm, waiting.pk, decision="resume", coment="x")
    assert typo.status_code == 400 and "coment" in typo.json()["errors"]
    assert pending(waiting) == REVIEW


@pytest.mark.django_db
def test_qa_may_not_settle_a_manual_review_and_ops_may_only_roll_back(waiting, qa, ops, nobody):
    refused = acknowledge(qa, waiting.pk, decision="resume", comment="fine by me")
    assert refused.status_code == 403 and "release_manager" in refused.json()["detail"]
    assert acknowledge(nobody, waiting.pk, decision="rollback", comment="x").status_code == 403
    ops_resume = acknowledge(ops, waiting.pk, decision="resume", comment="looks fine")
    assert ops_resume.status_code == 403 and "resume" in ops_resume.json()["detail"]
    assert pending(waiting) == REVIEW
    assert not AuditEvent.objects.filter(action="sla.manual_review.acknowledge").exists()


@pytest.mark.django_db
def test_acknowledge_conflicts_when_no_review_waits(canary, make_release, rm):
    never_evaluated = acknowledge(rm, canary.pk, decision="resume", comment="nothing to see")
    assert never_evaluated.status_code == 409 and "no manual review" in never_evaluated.json()["detail"]
    gate_record(canary, manual_review=None, summary="v1.1.0 passed every rule: ready for the next step at 12:48:20")
    settled = acknowledge(rm, canary.pk, decision="rollback", comment="again")
    assert settled.status_code == 409 and settled.json()["code"] == "transition_not_allowed"
    canary.refresh_from_db()
    assert canary.status == S.GRAY  # a 409 rolls nothing back
    missing = acknowledge(rm, 999999, decision="resume", comment="x")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


@pytest.mark.django_db
def test_resume_clears_the_review_resumes_a_paused_canary_and_is_audited(waiting, rm):
    release_pause(actor=Actor.of(rm), release_id=waiting.pk, comment="gate asked for a person")
    sequence = GateRecord.objects.get(pk=waiting.pk).sequence
    answer = acknowledge(rm, waiting.pk, decision="resume", comment="callback sink was down, fixed")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["decision"], body["release_status"], body["manual_review"]) == ("resume", S.GRAY, None)
    assert body["sequence"] == sequence + 1 and (body["gate_status"], body["gate_action"]) == ("watching", "hold")
    assert pending(waiting) is None
    event = AuditEvent.objects.get(action="sla.manual_review.acknowledge", release=waiting)
    assert event.actor_name == "rm" and event.reason == "callback sink was down, fixed"
    assert event.details["decision"] == "resume" and event.details["review_since"] == REVIEW["since"]
    assert client_for(rm).get(f"/api/releases/{waiting.pk}/sla/").json()["manual_review"] is None
    again = acknowledge(rm, waiting.pk, decision="resume", comment="twice")
    assert again.status_code == 409


@pytest.mark.django_db
def test_rollback_settles_the_review_and_rolls_the_canary_back(waiting, ops):
    answer = acknowledge(ops, waiting.pk, decision="rollback", comment="callbacks lost: not worth the risk")
    assert answer.status_code == 200, answer.content
    waiting.refresh_from_db()
    assert (waiting.status, waiting.gray_weight) == (S.ROLLED_BACK, 0)
    assert answer.json()["release_status"] == S.ROLLED_BACK and pending(waiting) is None
    assert AuditEvent.objects.filter(action="release.rollback", release=waiting, actor_name="ops").exists()
    assert AuditEvent.objects.get(action="sla.manual_review.acknowledge").details["decision"] == "rollback"


@pytest.mark.django_db
def test_release_sla_answer_opens_with_the_sentence_and_names_the_pending_review(waiting, qa):
    body = client_for(qa).get(f"/api/releases/{waiting.pk}/sla/").json()
    assert body["summary"] == SUMMARY and body["verdict"]["summary"] == SUMMARY
    assert body["manual_review"] == REVIEW
    assert body["gate"]["status"] == "manual_review"
    units = {f["rule"]: (f["unit"], f["measured"]) for f in body["verdict"]["findings"]}
    assert units["callback_failure_rate"] == ("ratio", 0.031) and units["evidence_power"] == ("count", 12345)
    assert isinstance(units["evidence_power"][1], int)  # counts stay integers in the JSON


def make_report(release: Release, *, sequence: int, status: str, action: str, summary: str,
                at: datetime = SINCE) -> SlaReport:
    return SlaReport.objects.create(
        release=release, service=release.service, environment=release.environment, sequence=sequence,
        gray_weight=release.gray_weight, version=release.version.tag, start_ts=at - timedelta(minutes=10),
        agent_group=f"{release.service.name}-{release.environment.name}", success_rate=0.9954, p95_latency_ms=512,
        error_trace_ratio=0.0046, callback_fail_rate=0.0, status=status, action=action, outcome="EVALUATED",
        evaluated_at=at + timedelta(seconds=sequence),
        verdict={"summary": summary, "reasons": [summary], "findings": []}, readings={})


@pytest.fixture
def reports(canary):
    return {
        "promoted": make_report(canary, sequence=1, status="verified", action="ready_to_promote",
                                summary="v1.1.0 passed every rule over 12,345 traces this phase: promoted to the "
                                        "next step at 12:48:21"),
        "paused": make_report(canary, sequence=2, status="blocked", action="pause",
                              summary="v1.1.0 failed 1.50 % of 4,000 traces, below the 99.00 % floor: ramp paused "
                                      "at 12:48:22"),
        "rolled_back": make_report(canary, sequence=3, status="rollbacked", action="rollback",
                                   summary="v1.1.0 p95 900 ms against 500 ms on v1.0.0: rolled back at 12:48:23"),
    }


@pytest.mark.django_db
def test_reports_list_filters_by_action_and_carries_the_sentence(reports, qa):
    client = client_for(qa)
    promoted = client.get("/api/sla/reports/", {"action": "ready_to_promote"}).json()
    assert [r["id"] for r in promoted] == [reports["promoted"].pk]
    assert promoted[0]["summary"].startswith("v1.1.0 passed every rule")
    both = client.get("/api/sla/reports/", {"action": "pause,rollback"}).json()
    assert [r["action"] for r in both] == ["rollback", "pause"]
    assert client.get("/api/sla/reports/", {"action": "block_version"}).json() == []
    bad = client.get("/api/sla/reports/", {"action": "promote"})
    assert bad.status_code == 400 and list(bad.json()["errors"]) == ["action"]
    assert "ready_to_promote" in bad.json()["detail"]

    exported = client.get("/api/sla/reports.csv", {"action": "pause"})
    table = list(csv.DictReader(io.StringIO(streamed(exported))))
    assert [(r["action"], r["summary"]) for r in table] == [("pause", reports["paused"].verdict["summary"])]
