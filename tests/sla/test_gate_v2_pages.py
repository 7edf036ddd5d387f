"""SLA gate v2 on the pages: the verdict sentence first, numbers in their unit, the manual-review box and its
form, the snapshot page's sentence and chart, QA's list filtered by action, and the policy page with the
precedence table and the power formula (kept identical to sla/verdict.py and sla/stats.py)."""
import inspect
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client

from frontend.templatetags.sla_format import in_unit, reading_value
from releases.models import AuditEvent
from releases.services import Actor, release_rollback
from sla import quality, selectors, services, stats, verdict
from sla.models import GateRecord, SlaSample

from .test_gate_v2_api import REVIEW, SINCE, SUMMARY, canary, gate_record, make_report, reports  # noqa: F401

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def section(user, release) -> str:
    answer = logged_in(user).get(f"/sla/releases/{release.pk}/")
    assert answer.status_code == 200
    return answer.content.decode()


def test_units_are_shown_as_people_read_them():
    assert in_unit(0.046, "ratio") == "4.60 %" and in_unit(1234, "ms") == "1,234 ms"
    assert in_unit(12345, "count") == "12,345" and in_unit(30, "s") == "30 s" and in_unit(2.3456, "stat") == "2.35"
    assert in_unit(None, "ratio") == "" and in_unit(0.5, None) == "0.50"
    assert reading_value(0.5123, "trace_latency_p95") == "512 ms" and reading_value(None, "request_count") == "n/a"
    # a cost per task far below a cent keeps its digits: 0.00083 against a threshold of 0.0084 is not "0.00 vs 0.01"
    from sla.explain import rounded
    assert rounded(0.000834, "stat") == 0.000834 and in_unit(rounded(0.000834, "stat"), "stat") == "0.000834"
    assert in_unit(0.00836, "stat") == "0.00836" and in_unit(0.8234, "stat") == "0.82"


def test_sla_section_opens_with_the_sentence_then_rules_in_their_units(canary, rm):  # noqa: F811
    gate_record(canary)
    page = section(rm, canary)
    assert SUMMARY in page
    assert page.index(SUMMARY) < page.index('class="sla-findings"')
    assert ">3.10 %<" in page and ">2.00 %<" in page and ">1,234 ms<" in page and ">12,345<" in page
    # the queries are folded away, one per rule that has one
    folded = page[page.index("<details"):]
    assert "agent_callback_total" in folded and 'href="/sla/policy/staging/?service=agent-infer"' in page
    # the rule that fired is shown before the fold, with its numbers; the passing ones stay folded
    shown = page[page.index("data-sla-fired"):page.index('<details class="sla-rules"')]
    assert "callback_failure_rate" in shown and "3.10 %" in shown and "2.00 %" in shown
    assert "p95_latency_rollback" not in shown and "evidence_power" not in shown


def test_manual_review_box_offers_resume_and_roll_back_to_those_who_may(canary, rm, ops, qa):  # noqa: F811
    gate_record(canary)
    page = section(rm, canary)
    assert "data-manual-review" in page and 'role="alert"' in page and "Manual review needed" in page
    assert "since 2026-11-29 12:48:20 UTC" in page and "output channel anomaly" in page
    assert f'action="/sla/releases/{canary.pk}/acknowledge/"' in page and "required" in page
    assert 'value="resume"' in page and 'value="rollback"' in page

    ops_page = section(ops, canary)  # ops may roll back, not resume
    assert 'value="rollback"' in ops_page and 'value="resume"' not in ops_page
    qa_page = section(qa, canary)
    assert "data-manual-review" in qa_page and "<form" not in qa_page
    assert "Only ops, release_manager may settle it" in qa_page


def test_no_review_box_once_nothing_waits(canary, rm):  # noqa: F811
    gate_record(canary, manual_review=None, summary="v1.1.0 passed every rule: ready for the next step at 12:48:20")
    page = section(rm, canary)
    assert "data-manual-review" not in page and "ready for the next step" in page


def test_a_release_off_the_ramp_offers_no_review_form(canary, rm):  # noqa: F811
    gate_record(canary)
    release_rollback(actor=Actor.of(rm), release_id=canary.pk, comment="by hand")
    page = section(rm, canary)
    assert "data-manual-review" not in page and "<form" not in page and "data-stale-review" in page
    assert "The gate no longer judges this release: it is rolled back since" in page  # the verdict is history now


def test_a_canary_on_the_ramp_is_not_called_history(canary, rm):  # noqa: F811
    gate_record(canary)
    assert "data-sla-history" not in section(rm, canary)


def test_the_page_form_settles_the_review_or_says_which_field_is_missing(canary, rm):  # noqa: F811
    gate_record(canary)
    client = logged_in(rm)
    url = f"/sla/releases/{canary.pk}/acknowledge/"
    refused = client.post(url, {"decision": "resume", "comment": ""}, follow=True)
    assert refused.redirect_chain[-1][0] == f"/releases/{canary.pk}/"
    assert "manual review not settled: comment: a comment is required" in refused.content.decode()
    assert GateRecord.objects.get(pk=canary.pk).state["manual_review"] == REVIEW

    done = client.post(url, {"decision": "resume", "comment": "callback sink fixed"}, follow=True)
    assert "manual review settled, resumed" in done.content.decode()
    assert GateRecord.objects.get(pk=canary.pk).state["manual_review"] is None
    assert AuditEvent.objects.get(action="sla.manual_review.acknowledge").reason == "callback sink fixed"
    again = client.post(url, {"decision": "rollback", "comment": "too late"}, follow=True)
    assert "no manual review waiting" in again.content.decode()
    assert client.get(url).status_code == 405


def test_qa_posting_the_form_is_refused_with_the_reason(canary, qa):  # noqa: F811
    gate_record(canary)
    answer = logged_in(qa).post(f"/sla/releases/{canary.pk}/acknowledge/",
                                {"decision": "rollback", "comment": "stop it"}, follow=True)
    assert "manual review not settled: only release_manager, ops may roll back" in answer.content.decode()
    assert GateRecord.objects.get(pk=canary.pk).state["manual_review"] == REVIEW


def test_snapshot_page_opens_with_the_sentence_and_charts_the_history_up_to_it(canary, reports, qa):  # noqa: F811
    report = reports["paused"]
    for offset in (-20, -10, 0, 30):  # the last sample comes after the snapshot: not in its chart
        SlaSample.objects.create(release=canary, sequence=100 + offset, evaluated_at=report.evaluated_at
                                 + timedelta(seconds=offset), gray_weight=5, status="watching", action="hold",
                                 canary_p95_ms=500.0 + offset, baseline_p95_ms=500.0)
    page = logged_in(qa).get(f"/sla/reports/{report.pk}/").content.decode()
    summary = report.verdict["summary"]
    assert summary in page and page.index(summary) < page.index("<h2>Report</h2>")
    assert '<td data-field="success_rate">99.54 %</td>' in page
    assert '<td data-field="p95_latency_ms">512 ms</td>' in page and '>0.46 %<' in page
    series = json.loads(re.search(r'<script id="sla-series" type="application/json">(.*?)</script>', page,
                                  re.S).group(1))
    assert series["canary_p95_ms"] == [480.0, 490.0, 500.0]
    assert page.count("<canvas data-sla-chart=") == 5 and "frontend/sla.js" in page  # eval score: hidden when empty


def test_qa_list_filters_by_action_and_shows_each_sentence(reports, qa):
    client = logged_in(qa)
    page = client.get("/sla/reports/").content.decode()
    assert page.count("data-report-id=") == 3
    assert all(r.verdict["summary"] in page for r in reports.values())
    assert '<option value="block_version"' in page
    promoted = client.get("/sla/reports/", {"action": "ready_to_promote"}, HTTP_HX_REQUEST="true").content.decode()
    assert promoted.count("data-report-id=") == 1 and 'data-action="ready_to_promote"' in promoted
    assert 'href="/api/sla/reports.csv?action=ready_to_promote"' in promoted
    bad = client.get("/sla/reports/", {"action": "explode"}).content.decode()
    assert "action: one of ready_to_promote, hold, pause, block_version, rollback" in bad


def _docstring_precedence() -> list[tuple[str, str, str]]:
    """The table in sla/verdict.py's docstring: rows start at column 0, continuation lines are indented."""
    lines = verdict.__doc__.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=====")]
    rows: list[list[str]] = []
    for line in lines[rules[1] + 1:rules[2]]:
        if line.strip() and not line.startswith(" "):
            rows.append(line.split(None, 2))
        elif line.strip():
            rows[-1][2] += " " + line.strip()
    return [(status, action, " ".join(text.replace("``", "").split())) for status, action, text in rows]


def test_policy_page_shows_fields_precedence_and_power_formula_as_the_code_says(environments, service, auditor):
    assert [(s, a, " ".join(t.split())) for s, a, t in selectors.PRECEDENCE] == _docstring_precedence()
    comment = " ".join(line.lstrip("#").strip() for line in inspect.getsource(stats).splitlines()
                       if line.startswith("#"))
    assert selectors.POWER_FORMULA in " ".join(comment.split())
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert selectors.POWER_FORMULA in readme
    for status, action, _ in selectors.PRECEDENCE:
        assert f"| {status} | `{action}` |" in readme, (status, action)

    client = logged_in(auditor)
    environment_page = client.get("/environments/staging/").content.decode()
    assert 'href="/sla/policy/staging/"' in environment_page
    page = client.get("/sla/policy/staging/").content.decode()
    assert [m for m in re.findall(r'data-precedence="([a-z_]+)"', page)] == [a for _, a, _ in selectors.PRECEDENCE]
    assert "z_(1-alpha) * sqrt(p_s (1 - p_s) (1/n_c + 1/n_s))" in page
    assert 'data-field="pause_below_success_rate"' in page and 'data-field="power"' in page
    assert "defaults (never saved)" in page
    assert client.get("/sla/policy/nowhere/").status_code == 404
    assert client.get("/sla/policy/staging/", {"service": "nope"}).status_code == 404


def test_policy_page_header_names_where_the_effective_values_come_from(environments, service, ops, auditor):
    """An environment policy saved and no service override: the service's page names the environment's version,
    not "never saved" (the values shown are that version's, not the defaults)."""
    client = logged_in(auditor)
    never = client.get("/sla/policy/staging/", {"service": service.name}).content.decode()
    assert "defaults (never saved)" in never and "Never saved: the defaults apply." in never

    services.policy_version_save(actor=Actor.of(ops), environment="staging", policy={"evaluation_window_s": 30},
                                 comment="demo")
    env_page = client.get("/sla/policy/staging/").content.decode()
    assert re.search(r"data-policy-source>\s*version 1\s*</small>", env_page)
    page = client.get("/sla/policy/staging/", {"service": service.name}).content.decode()
    source = re.search(r"data-policy-source>(.*?)</small>", page, re.S).group(1)
    assert " ".join(source.split()) == f"staging's policy v1 (no override for {service.name})"
    assert "never saved" not in page.lower()
    assert f"No override for {service.name} saved: staging's policy v1 applies." in page
    value = re.search(r'data-field="evaluation_window_s".*?<td class="num">(.*?)</td>', page, re.S).group(1)
    assert float(value) == 30, value  # the environment version's value, not the default 600

    services.policy_version_save(actor=Actor.of(ops), environment="staging", service=service.name,
                                 policy={"evaluation_window_s": 60}, comment="override")
    page = client.get("/sla/policy/staging/", {"service": service.name}).content.decode()
    source = re.search(r"data-policy-source>(.*?)</small>", page, re.S).group(1)
    assert " ".join(source.split()) == f"{service.name}'s override v1 over staging's policy v1"
    api = client.get(f"/api/sla/policies/staging/?service={service.name}").json()
    assert (api["number"], api["environment_number"]) == (1, 1)


def test_precedence_table_lists_each_llm_quality_rule_in_the_row_of_its_effect_in_the_code(environments, auditor):
    """The quality rules (sla/quality.py) decide through the same effects; each is listed in its effect's row,
    in the code's table, the README and on the policy page."""
    fired = set(re.findall(r'Finding\(\s*"(\w+)",\s*Effect\.([A-Z_]+)', inspect.getsource(quality)))
    assert {rule for rule, _ in fired} == {"eval_score_regression", "tool_error_regression", "cost_per_success"}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    page = logged_in(auditor).get("/sla/policy/staging/").content.decode()
    page_rows = re.findall(r'<tr data-precedence="(\w+)"><td><span class="status sla-(\w+)">.*?</tr>', page, re.S)
    page_texts = re.findall(r'<tr data-precedence="\w+">(.*?)</tr>', page, re.S)
    for rule, name in fired:
        effect = verdict.Effect[name]
        rows = [(status, action) for status, action, text in selectors.PRECEDENCE if rule in text]
        assert rows == [(effect.status, effect.action)], (rule, effect)
        assert [(s, a) for (a, s), text in zip(page_rows, page_texts) if rule in text] == rows, rule
        readme_rows = [line for line in readme.splitlines() if f"`{rule}`" in line
                       and any(line.startswith(f"| {status} | `{action}` |")
                               for status, action, _ in selectors.PRECEDENCE)]
        assert [line.split(" | ")[:2] for line in readme_rows] == [[f"| {effect.status}", f"`{effect.action}`"]], rule
