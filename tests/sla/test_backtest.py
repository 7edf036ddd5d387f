"""Policy backtest on a seeded history with known outcomes: the stored SLA reports of four past releases are
replayed through sla.verdict.evaluate with candidate policies, and false stops / missed regressions are counted."""
from datetime import timedelta

import pytest
from django.utils import timezone

from releases.choices import ReleaseStatus as S
from sla.models import SlaReport
from tests.conftest import client_for
from tests.sla.test_dora import History

pytestmark = pytest.mark.django_db
URL = "/api/sla/policies/staging/backtest/"


def readings(total, failed):
    def metrics(n, f):
        return {"request_count": {"value": n, "query": "q", "window_s": 600},
                "failed_request_count": {"value": f, "query": "q", "window_s": 600},
                "trace_success_rate": {"value": 1 - f / n, "query": "q", "window_s": 600}}
    return {"canary": {"metrics": metrics(total, failed), "latency_buckets": []},
            "baseline": {"metrics": metrics(20000, 130), "latency_buckets": []}}


@pytest.fixture
def past(environments, service, dev):
    """v1.1.0: 98.5 % success, paused by the gate, rolled back (a regression).
    v1.2.0: 99.3 % (stable 99.35 %), went live and stayed (healthy).  v1.3.0: 99.5 %, live (healthy).
    v1.4.0: 99.4 % in every report, live, then rolled back by a person (a regression the numbers never showed)."""
    h = History(dev)
    t0 = timezone.now() - timedelta(days=3)
    made = {}
    for index, (tag, reports, ending) in enumerate([
        ("v1.1.0", [(1000, 18, "hold"), (10000, 150, "pause")], [S.ROLLED_BACK]),
        ("v1.2.0", [(20000, 140, "hold")], [S.LIVE]),
        ("v1.3.0", [(10000, 50, "hold")], [S.LIVE]),
        ("v1.4.0", [(10000, 60, "hold")], [S.LIVE, S.ROLLED_BACK]),
    ]):
        start = t0 + timedelta(hours=index)
        release = made[tag] = h.release("agent-infer", "staging", tag)
        h.move(release, S.GRAY, start, from_state=S.READY)
        for number, (total, failed, action) in enumerate(reports, start=1):
            SlaReport.objects.create(
                release=release, service=release.service, environment=release.environment, sequence=number,
                gray_weight=5, version=tag, start_ts=start, agent_group="agent-infer-staging",
                status="blocked" if action == "pause" else "watching", action=action, outcome="EVALUATED",
                evaluated_at=start + timedelta(seconds=60 * number), verdict={"summary": ""},
                readings=readings(total, failed))
        for step, state in enumerate(ending, start=1):
            h.move(release, state, start + timedelta(minutes=10 * step), from_state=S.GRAY)
    return made


def run(qa, policy, **extra):
    response = client_for(qa).post(URL, {"policy": policy, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_current_defaults_stop_the_failing_release_and_miss_the_silent_one(past, qa):
    result = run(qa, {})
    rows = {row["version"]: row for row in result["rows"]}
    assert (result["releases"], result["false_stops"], result["missed_regressions"]) == (4, 0, 1)
    assert rows["v1.1.0"]["candidate_action"] == "pause" and rows["v1.1.0"]["decision_change_s"] == 0.0
    assert "below the 99.00 % floor" in rows["v1.1.0"]["candidate_summary"]
    assert rows["v1.4.0"]["missed_regression"] and rows["v1.4.0"]["outcome"] == "regression"
    assert [rows[v]["outcome"] for v in ("v1.2.0", "v1.3.0")] == ["healthy", "healthy"]


def test_a_stricter_floor_would_have_stopped_a_healthy_release(past, qa):
    result = run(qa, {"pause_below_success_rate": 0.995})
    rows = {row["version"]: row for row in result["rows"]}
    assert (result["false_stops"], result["missed_regressions"]) == (1, 1)
    assert rows["v1.2.0"]["false_stop"] and rows["v1.2.0"]["candidate_action"] == "pause"
    assert not rows["v1.3.0"]["false_stop"]  # 99.5 % is not below a 99.5 % floor


def test_a_lenient_policy_misses_both_regressions(past, qa):
    result = run(qa, {"pause_below_success_rate": 0.95, "advance_min_success_rate": 0.96,
                      "block_failed_traces": 100000})
    assert (result["false_stops"], result["missed_regressions"]) == (0, 2)
    assert result["decision_change_median_s"] is None


def test_less_evidence_needed_decides_a_minute_earlier(past, qa):
    result = run(qa, {"stop_significance": 0.05})
    rows = {row["version"]: row for row in result["rows"]}
    assert rows["v1.1.0"]["decision_change_s"] == -60.0 and result["decision_change_median_s"] == -60.0


def test_service_filter_and_bad_candidates(past, qa):
    assert run(qa, {}, service="agent-plan")["releases"] == 0
    bad = client_for(qa).post(URL, {"policy": {"pause_below_success_rate": 2, "nonsense": 1}}, format="json")
    assert bad.status_code == 400
    errors = bad.json()["errors"]["policy"]
    assert set(errors) == {"pause_below_success_rate", "nonsense"}
    assert client_for(qa).post("/api/sla/policies/nowhere/backtest/", {"policy": {}}, format="json").status_code == 404


def test_policy_page_shows_the_backtest_next_to_the_diff(past, qa, client):
    import json as _json

    client.force_login(qa)
    page = client.get("/sla/policy/staging/", {"candidate": _json.dumps({"pause_below_success_rate": 0.995})})
    text = page.content.decode()
    assert page.status_code == 200
    assert "<code>pause_below_success_rate</code></td><td class=\"num\">0.99</td><td class=\"num\"><b>0.995</b>" in text
    assert "4 past releases replayed: <b>1 false stop</b>" in text and "<b>1 missed regression</b>" in text
    assert f'data-backtest-release="{past["v1.2.0"].pk}" class="fired"' in text
    bad = client.get("/sla/policy/staging/", {"candidate": '{"pause_below_success_rate": 2'}).content.decode()
    assert "candidate: not JSON" in bad
    wrong = client.get("/sla/policy/staging/", {"candidate": '{"power": 2}'}).content.decode()
    assert "power: must be a probability" in wrong


def test_the_answer_says_sequential_tests_are_not_replayed_and_marks_stops_made_by_one(past, qa, dev, client):
    # v1.5.0: 99.2 % success over the window (above the 99 % floor), but the gate's sequential error test paused it
    # within seconds; it was rolled back. The window rules alone never stop it: the row says why.
    h = History(dev)
    start = timezone.now() - timedelta(days=2)
    release = h.release("agent-infer", "staging", "v1.5.0")
    h.move(release, S.GRAY, start, from_state=S.READY)
    for number, (total, failed, action, fired) in enumerate([(800, 6, "hold", []), (1500, 12, "pause", [
            {"rule": "error_regression_sequential", "fired": True, "effect": "pause"},
            {"rule": "success_rate_floor", "fired": False, "effect": None}])], start=1):
        SlaReport.objects.create(
            release=release, service=release.service, environment=release.environment, sequence=number,
            gray_weight=5, version="v1.5.0", start_ts=start, agent_group="agent-infer-staging",
            status="blocked" if action == "pause" else "watching", action=action, outcome="EVALUATED",
            evaluated_at=start + timedelta(seconds=20 * number), verdict={"summary": "", "findings": fired},
            readings=readings(total, failed))
    h.move(release, S.ROLLED_BACK, start + timedelta(minutes=5), from_state=S.GRAY)

    result = run(qa, {})
    rows = {row["version"]: row for row in result["rows"]}
    assert result["not_replayed"].startswith("sequential tests are not replayed: stored reports keep the readings of each")
    assert result["actual_stops_by_sequential_tests"] == 1
    assert rows["v1.5.0"]["actual_by_sequential_test"] and rows["v1.5.0"]["missed_regression"]
    assert not rows["v1.1.0"]["actual_by_sequential_test"]  # stopped by the window floor, which is replayed
    client.force_login(qa)
    text = client.get("/sla/policy/staging/", {"candidate": "{}"}).content.decode()
    assert "Sequential tests are not replayed: stored reports keep" in text and "(1 of the gate's stops here)" in text
    assert "(by a sequential test: not replayed)" in text
