"""DORA and time to safety on a seeded history whose outcomes are known: deployment frequency, lead time for
changes, change failure rate and time to restore per service, environment and week (API, CSV, page), and the
release page's breach onset -> verdict -> action -> stable timeline.

The history is written as the services write it (releases through release_create, status changes as audit rows,
gate evaluations as SLA samples), but with chosen times: audit rows are append-only, so the seed inserts them
with their `created_at` instead of moving a clock.
"""
import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from releases.choices import ReleaseStatus as S
from releases.models import AgentService, AuditEvent, Release
from releases.services import Actor, release_create
from sla.dora import week_start
from sla.models import SlaReport, SlaSample
from tests.conftest import client_for, sha

pytestmark = pytest.mark.django_db

HEALTHY = {"canary_success_rate": 0.999, "baseline_success_rate": 0.999, "canary_p95_ms": 480.0,
           "baseline_p95_ms": 500.0, "canary_error_ratio": 0.001, "baseline_error_ratio": 0.001,
           "canary_callback_fail_rate": 0.0, "baseline_callback_fail_rate": 0.0}


class History:
    """Writes one release's past: created now, then status changes and gate samples at chosen times."""

    def __init__(self, dev):
        self.dev = dev

    def release(self, service, env, tag, *, committed_at=None) -> Release:
        release = release_create(actor=Actor.of(self.dev), service=service, environment=env, tag=tag,
                                 commit=sha(), committed_at=committed_at)
        return release

    def move(self, release, to_state, at, *, action=None, actor="rm", from_state=""):
        AuditEvent.objects.create(
            actor_name=actor, action=action or {S.GRAY: "release.promote", S.LIVE: "release.promote",
                                                S.ROLLED_BACK: "release.rollback", S.PAUSED: "release.pause",
                                                S.BLOCKED: "sla.block_version"}.get(to_state, "release.move"),
            object_type="release", object_id=str(release.pk), release=release, service=release.service,
            environment=release.environment, from_state=from_state, to_state=to_state, created_at=at)

    def sample(self, release, sequence, at, *, status="watching", action="hold", **canary):
        SlaSample.objects.create(release=release, sequence=sequence, evaluated_at=at, gray_weight=5, status=status,
                                 action=action, canary_requests=1000, baseline_requests=19000,
                                 **{**HEALTHY, **canary})


@pytest.fixture
def base():
    """The Monday three weeks before this one (UTC): weeks 0, 1 and 2 are history, week 3 is now."""
    return week_start(timezone.now()) - timedelta(weeks=3)


@pytest.fixture
def history(environments, service, dev, base):
    return seed_history(dev, base)


def seed_history(dev, base):
    """agent-infer in prod (and one staging release), agent-plan in prod; the expected figures are in the tests."""
    AgentService.objects.create(name="agent-plan", image_repository="registry.example.com/agent/agent-plan")
    h, d, m = History(dev), timedelta(days=1), timedelta(minutes=1)
    made = {}
    # week 0: two deployments (lead 26 h and 30 h), and v1.2.0 stopped by the gate: breach onset at +60 s,
    # verdict (pause) at +180 s, paused at +185 s, rolled back at +300 s -> time to restore 240 s.
    r1 = made["r1"] = h.release("agent-infer", "prod", "v1.0.0", committed_at=base)
    h.move(r1, S.GRAY, base + d + timedelta(hours=0), from_state=S.READY)
    h.move(r1, S.LIVE, base + d + timedelta(hours=2), from_state=S.GRAY)
    r2 = made["r2"] = h.release("agent-infer", "prod", "v1.1.0", committed_at=base + d)
    h.move(r2, S.GRAY, base + 2 * d, from_state=S.READY)
    h.move(r2, S.LIVE, base + 2 * d + timedelta(hours=6), from_state=S.GRAY)
    h.move(r1, S.SUPERSEDED, base + 2 * d + timedelta(hours=6), action="release.supersede", from_state=S.LIVE)
    r3 = made["r3"] = h.release("agent-infer", "prod", "v1.2.0", committed_at=base + 2 * d)
    t3 = base + 3 * d
    h.move(r3, S.GRAY, t3, from_state=S.READY)
    h.sample(r3, 1, t3)  # healthy
    h.sample(r3, 2, t3 + m, canary_success_rate=0.97)
    h.sample(r3, 3, t3 + 2 * m, canary_success_rate=0.96, canary_error_ratio=0.03)
    h.sample(r3, 4, t3 + 3 * m, status="blocked", action="pause", canary_success_rate=0.95)
    SlaReport.objects.create(release=r3, service=r3.service, environment=r3.environment, sequence=4, gray_weight=5,
                             version="v1.2.0", start_ts=t3, agent_group="agent-infer-prod", status="blocked",
                             action="pause", outcome="FAILED", evaluated_at=t3 + 3 * m,
                             verdict={"summary": "Paused: success rate 95.00 % is below the 99 % floor."})
    h.move(r3, S.PAUSED, t3 + timedelta(seconds=185), actor="sla-gate", from_state=S.GRAY)
    h.move(r3, S.ROLLED_BACK, t3 + timedelta(seconds=300), actor="ops", from_state=S.PAUSED)

    # week 1: v1.3.0 live without a known commit time; v1.4.0 rolled back by the gate for latency (onset +30 s,
    # stable +160 s -> 130 s); v1.5.0 rolled back by a person with no gate history (onset unknown);
    # v1.6.0 blocked by the scan before any traffic (not a change).
    w1 = base + timedelta(weeks=1)
    r4 = made["r4"] = h.release("agent-infer", "prod", "v1.3.0")
    h.move(r4, S.LIVE, w1 + timedelta(hours=2), from_state=S.READY)
    r5 = made["r5"] = h.release("agent-infer", "prod", "v1.4.0", committed_at=w1)
    t5 = w1 + d
    h.move(r5, S.GRAY, t5, from_state=S.READY)
    h.sample(r5, 1, t5 + timedelta(seconds=30), canary_p95_ms=800.0)
    h.sample(r5, 2, t5 + timedelta(seconds=90), canary_p95_ms=820.0)
    h.sample(r5, 3, t5 + timedelta(seconds=150), status="rollbacked", action="rollback", canary_p95_ms=900.0)
    h.move(r5, S.ROLLED_BACK, t5 + timedelta(seconds=160), actor="sla-gate", from_state=S.GRAY)
    r6 = made["r6"] = h.release("agent-infer", "prod", "v1.5.0")
    h.move(r6, S.GRAY, w1 + 2 * d, from_state=S.READY)
    h.move(r6, S.ROLLED_BACK, w1 + 2 * d + 10 * m, actor="ops", from_state=S.GRAY)
    r7 = h.release("agent-infer", "prod", "v1.6.0")
    h.move(r7, S.BLOCKED, w1 + 3 * d, action="pipeline.scan_blocked", actor="pipeline", from_state=S.BUILDING)

    # week 2: v1.7.0 (committed in week 1) live after 27 h, then rolled back by a person; the gate's samples
    # were healthy, so the onset is unknown; v1.3.0 is restored (not a deployment). agent-plan: one deployment.
    w2 = base + timedelta(weeks=2)
    r8 = made["r8"] = h.release("agent-infer", "prod", "v1.7.0", committed_at=w2 - d)
    h.move(r8, S.GRAY, w2 + timedelta(hours=1), from_state=S.READY)
    h.sample(r8, 1, w2 + timedelta(hours=1, minutes=1))
    h.move(r8, S.LIVE, w2 + timedelta(hours=3), from_state=S.GRAY)
    h.move(r8, S.ROLLED_BACK, w2 + d, actor="ops", from_state=S.LIVE)
    h.move(r4, S.LIVE, w2 + d, action="release.restore", actor="ops", from_state=S.SUPERSEDED)
    r9 = made["r9"] = h.release("agent-plan", "prod", "v2.0.0", committed_at=w2 + d - timedelta(hours=1))
    h.move(r9, S.GRAY, w2 + d, from_state=S.READY)
    h.move(r9, S.LIVE, w2 + d + timedelta(minutes=30), from_state=S.GRAY)
    # staging, week 0: one deployment that must not appear under environment=prod
    r10 = made["r10"] = h.release("agent-infer", "staging", "v1.0.1", committed_at=base)
    h.move(r10, S.LIVE, base + timedelta(hours=5), from_state=S.READY)
    return made


def by_week(rows):
    return {row["week"]: row for row in rows}


def test_weekly_dora_figures_of_a_seeded_history(history, base, qa):
    response = client_for(qa).get("/api/dora/", {"service": "agent-infer", "environment": "prod",
                                                 "since": base.date().isoformat()})
    assert response.status_code == 200, response.content
    weeks = by_week(response.json())
    assert list(weeks) == [(base + timedelta(weeks=n)).date().isoformat() for n in range(4)]
    w0, w1, w2, w3 = weeks.values()
    assert (w0["deployments"], w0["lead_time_median_s"], w0["lead_time_count"]) == (2, 100800.0, 2)
    assert (w0["changes"], w0["failures"], w0["change_failure_rate"]) == (3, 1, 0.3333)
    assert (w0["time_to_restore_median_s"], w0["restores"], w0["restore_unknown"]) == (240.0, 1, 0)

    assert (w1["deployments"], w1["lead_time_median_s"], w1["lead_time_count"]) == (1, None, 0)
    assert (w1["changes"], w1["failures"], w1["change_failure_rate"]) == (3, 2, 0.6667)
    assert (w1["time_to_restore_median_s"], w1["restores"], w1["restore_unknown"]) == (130.0, 1, 1)

    # the restore of v1.3.0 by the rollback is not a deployment
    assert (w2["deployments"], w2["lead_time_median_s"]) == (1, 97200.0)
    assert (w2["changes"], w2["failures"], w2["change_failure_rate"]) == (1, 1, 1.0)
    assert (w2["time_to_restore_median_s"], w2["restore_unknown"]) == (None, 1)

    assert (w3["deployments"], w3["changes"], w3["change_failure_rate"]) == (0, 0, None)


def test_filters_select_service_and_environment(history, base, qa):
    api = client_for(qa)
    plan = api.get("/api/dora/", {"service": "agent-plan", "since": base.date().isoformat()}).json()
    assert {(r["service"], r["environment"]) for r in plan} == {("agent-plan", "prod")}
    assert [(r["deployments"], r["lead_time_median_s"]) for r in plan if r["deployments"]] == [(1, 5400.0)]
    staging = api.get("/api/dora/", {"environment": "staging", "since": base.date().isoformat()}).json()
    assert [(r["week"], r["deployments"], r["lead_time_median_s"]) for r in staging if r["deployments"]] == [
        (base.date().isoformat(), 1, 18000.0)]
    everything = api.get("/api/dora/", {"since": base.date().isoformat()}).json()
    assert sum(r["deployments"] for r in everything) == 2 + 1 + 1 + 1 + 1


def test_since_defaults_to_twelve_weeks_and_later_since_drops_earlier_weeks(history, base, qa):
    api = client_for(qa)
    default = api.get("/api/dora/", {"service": "agent-infer", "environment": "prod"}).json()
    assert len(default) == 12 and sum(r["deployments"] for r in default) == 4
    later = api.get("/api/dora/", {"service": "agent-infer", "environment": "prod",
                                   "since": (base + timedelta(weeks=2)).isoformat()}).json()
    assert [r["deployments"] for r in later] == [1, 0] and later[0]["failures"] == 1


def test_csv_export_streams_the_same_rows(history, base, qa):
    response = client_for(qa).get("/api/dora.csv", {"service": "agent-infer", "environment": "prod",
                                                    "since": base.date().isoformat()})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="dora.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4
    assert rows[0]["deployments"] == "2" and rows[0]["lead_time_median_s"] == "100800.0"
    assert rows[1]["change_failure_rate"] == "0.6667" and rows[1]["time_to_restore_median_s"] == "130.0"
    assert rows[3]["lead_time_median_s"] == ""  # nothing to measure: empty, not 0


@pytest.mark.parametrize("params, field, words", [
    ({"since": "last tuesday"}, "since", "must be a date"),
    ({"service": "Agent_Infer"}, "service", "lowercase"),
])
def test_bad_filters_are_400_naming_the_field(environments, qa, params, field, words):
    response = client_for(qa).get("/api/dora/", params)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(f"{field}: ") and words in str(body["errors"][field])


def test_since_far_back_is_clamped_and_a_future_since_has_no_weeks(history, qa):
    api = client_for(qa)
    old = api.get("/api/dora/", {"service": "agent-plan", "since": "2001-01-01"}).json()
    assert len(old) in (104, 105) and sum(r["deployments"] for r in old) == 1
    assert api.get("/api/dora/", {"since": "2999-01-01"}).json() == []


def test_dora_needs_the_sla_view_permission(environments, nobody):
    assert client_for(nobody).get("/api/dora/").status_code == 403


def test_release_timeline_breach_onset_verdict_action_stable(history, qa, client):
    client.force_login(qa)
    page = client.get(f"/sla/releases/{history['r3'].pk}/").content.decode()
    assert "Time to safety" in page
    for step, after in (("breach onset", "0.0"), ("verdict", "120.0"), ("action", "125.0"), ("stable", "240.0")):
        assert f'data-step="{step}"' in page
        assert f'data-after-s="{after}"' in page
    assert "below the 99 % floor" in page  # the verdict's sentence
    assert "release.pause by sla-gate: gray -&gt; paused" in page
    assert 'data-time-to-restore="240.0"' in page


def test_timeline_of_a_person_rollback_says_the_onset_is_unknown(history, qa, client):
    client.force_login(qa)
    page = client.get(f"/sla/releases/{history['r8'].pk}/").content.decode()
    assert "unknown: no gate sample showed the canary worse than stable" in page
    assert "no gate verdict: a person acted" in page
    assert "data-time-to-restore" not in page
    assert 'data-lead-time="97200.0"' in page  # committed a day before, live 27 h later


def test_dora_page_is_in_the_navigation_and_shows_the_weeks(history, base, qa, client):
    client.force_login(qa)
    fleet = client.get("/").content.decode()
    assert 'href="/dora/"' in fleet
    page = client.get("/dora/", {"service": "agent-infer", "environment": "prod",
                                 "since": base.date().isoformat()}).content.decode()
    assert 'data-dora-chart="change_failure_rate"' in page and 'id="dora-series"' in page
    assert "frontend/dora.js" in page and "vendor/chart.js/dist/chart.umd.js" in page
    assert f'data-week="{base.date().isoformat()}"' in page
    assert "4 deployments; 4 of 7 changes failed" in page
    assert "/api/dora.csv?service=agent-infer&amp;environment=prod" in page
    bad = client.get("/dora/", {"since": "soon"}).content.decode()
    assert "since: must be a date such as 2026-11-02" in bad


def test_release_create_keeps_the_commit_time(environments, service, dev):
    api = client_for(dev)
    committed = (timezone.now() - timedelta(hours=7)).replace(microsecond=0)
    response = api.post("/api/releases/", {"service": "agent-infer", "environment": "staging", "tag": "v3.1.0",
                                           "commit": sha(), "committed_at": committed.isoformat()}, format="json")
    assert response.status_code == 201, response.content
    assert Release.objects.get(pk=response.json()["id"]).version.committed_at == committed
    future = api.post("/api/releases/", {"service": "agent-infer", "environment": "staging", "tag": "v3.2.0",
                                         "commit": sha(),
                                         "committed_at": (timezone.now() + timedelta(days=2)).isoformat()},
                      format="json")
    assert future.status_code == 400
    assert future.json()["detail"].startswith("committed_at: ") and "future" in future.json()["detail"]


def test_timeline_of_a_tool_error_rollback_names_the_rule_the_chart_samples_do_not_carry(environments, service, dev,
                                                                                       base, qa, client):
    """Rolled back for a tool-error regression while every charted reading matched stable: the onset is unknown
    because the rule is not in the samples, not because the canary never read worse (that contradicted the verdict)."""
    h, m = History(dev), timedelta(minutes=1)
    release = h.release("agent-infer", "staging", "v1.2.1")
    t = base + timedelta(days=1)
    h.move(release, S.GRAY, t, from_state=S.READY)
    h.sample(release, 1, t + m)
    h.sample(release, 2, t + 2 * m, status="rollbacked", action="rollback")
    SlaReport.objects.create(
        release=release, service=release.service, environment=release.environment, sequence=2, gray_weight=5,
        version="v1.2.1", start_ts=t, agent_group="agent-infer-staging", status="rollbacked", action="rollback",
        outcome="FAILED", evaluated_at=t + 2 * m,
        verdict={"summary": "v1.2.1's tool calls failed 12 % of the time: rolled back", "action": "rollback",
                 "findings": [{"rule": "success_rate_floor", "effect": None},
                              {"rule": "tool_error_regression", "effect": "rollback"}]})
    h.move(release, S.ROLLED_BACK, t + 2 * m + timedelta(seconds=5), actor="sla-gate", from_state=S.GRAY)

    client.force_login(qa)
    page = client.get(f"/sla/releases/{release.pk}/").content.decode()
    at = (t + 2 * m).strftime("%H:%M:%S")
    assert (f"unknown: the rule that fired (tool_error_regression) is not in the chart samples; the verdict came "
            f"at {at} UTC") in page
    assert "no gate sample showed the canary worse than stable" not in page


@pytest.mark.parametrize("canary_scores, onset_sample", [((0.81, 0.74, 0.72), 2), ((0.70, 0.71, 0.69), 1)])
def test_an_eval_score_pause_has_its_breach_onset_in_the_chart_samples(environments, service, dev, base, qa, client,
                                                                       canary_scores, onset_sample):
    """The chart samples carry the mean eval score: a quality pause's onset is the first sample in which the canary
    scored more than 0.05 below stable, and the eval-score chart has its series."""
    h, m = History(dev), timedelta(minutes=1)
    release = h.release("agent-infer", "staging", "v1.2.1")
    t = base + timedelta(days=1)
    h.move(release, S.GRAY, t, from_state=S.READY)
    for sequence, score in enumerate(canary_scores, start=1):
        last = sequence == len(canary_scores)
        h.sample(release, sequence, t + sequence * m, status="blocked" if last else "watching",
                 action="pause" if last else "hold", canary_eval_score=score, baseline_eval_score=0.82)
    h.move(release, S.PAUSED, t + len(canary_scores) * m + timedelta(seconds=5), actor="sla-gate",
           from_state=S.GRAY)

    client.force_login(qa)
    page = client.get(f"/sla/releases/{release.pk}/").content.decode()
    onset = (t + onset_sample * m).strftime("%Y-%m-%d %H:%M:%S")
    assert f"{onset} UTC" in page and "is not in the chart samples" not in page
    api = client_for(qa)
    series = api.get(f"/api/releases/{release.pk}/sla/").json()["series"]
    assert series["canary_eval_score"] == list(canary_scores) and series["baseline_eval_score"] == [0.82] * 3
