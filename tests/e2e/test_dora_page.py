"""The DORA page in the browser: weekly charts drawn by the project's own Chart.js (no inline script, no other
origin), the table and the CSV link; a release page shows its breach onset -> verdict -> action -> stable."""
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from sla.dora import week_start
from tests.e2e.conftest import act, log_in, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def seeded(environments, service, dev, qa):
    from tests.sla import test_dora

    base = week_start(timezone.now()) - timedelta(weeks=3)
    return act(test_dora.seed_history, dev, base), base


def test_dora_charts_and_release_timeline(new_page, seeded):
    made, base = seeded
    page = new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto("/")
    log_in(page, "qa")
    page.click("nav >> text=DORA")
    page.goto(f"/dora/?service=agent-infer&environment=prod&since={base.date().isoformat()}")
    for chart in ("deployments", "lead_time_median_s", "change_failure_rate", "time_to_restore_median_s"):
        page.wait_for_function(
            "name => { const c = document.querySelector(`canvas[data-dora-chart='${name}']`);"
            " return window.Chart && c && window.Chart.getChart(c) && c.width > 0; }", arg=chart)
    expect(page.locator("[data-dora-totals]")).to_contain_text("4 deployments; 4 of 7 changes failed")
    expect(page.locator(f"tr[data-week='{base.date().isoformat()}']")).to_contain_text("100800 s (2)")
    screenshot(page, "dora-weekly")

    page.goto(f"/releases/{made['r3'].pk}/")
    timeline = page.locator("[data-timeline]")
    expect(timeline).to_contain_text("breach onset")
    expect(page.locator("[data-time-to-restore]")).to_contain_text("240 s")
    screenshot(page, "release-time-to-safety")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_the_eval_score_chart_is_drawn_when_the_traces_carry_scores_and_left_out_when_not(new_page, environments,
                                                                                         service, dev, qa):
    """A quality pause shows its eval score against stable's in the release page's charts; a service whose traces
    carry no eval score gets no empty chart."""
    from sla.models import GateRecord
    from tests.sla.test_dora import History

    def seed():
        h, m, t = History(dev), timedelta(minutes=1), timezone.now() - timedelta(minutes=10)
        scored, plain = h.release("agent-infer", "staging", "v1.2.1"), h.release("agent-infer", "staging", "v1.2.2")
        for release, scores in ((scored, (0.81, 0.74, 0.71)), (plain, (None, None, None))):
            h.move(release, "gray", t, from_state="ready")
            for sequence, score in enumerate(scores, start=1):
                h.sample(release, sequence, t + sequence * m, canary_eval_score=score,
                         baseline_eval_score=None if score is None else 0.82)
            GateRecord.objects.create(release=release, sequence=3, status="watching", action="hold",
                                      evaluated_at=t + 3 * m)
        return scored, plain

    scored, plain = act(seed)
    page = new_page()
    page.goto("/")
    log_in(page, "qa")
    page.goto(f"/releases/{scored.pk}/")
    page.wait_for_function("() => { const c = document.querySelector(`canvas[data-sla-chart='eval_score']`);"
                           " return window.Chart && c && window.Chart.getChart(c) && c.width > 0; }")
    expect(page.locator("figure:has(canvas[data-sla-chart='eval_score'])")).to_be_visible()
    expect(page.locator("figure:has(canvas[data-sla-chart='eval_score']) figcaption")).to_contain_text("eval score")
    screenshot(page, "release-eval-score-chart")
    page.goto(f"/releases/{plain.pk}/")
    page.wait_for_function("() => { const c = document.querySelector(`canvas[data-sla-chart='p95_ms']`);"
                           " return window.Chart && c && window.Chart.getChart(c) && c.width > 0; }")
    expect(page.locator("figure:has(canvas[data-sla-chart='eval_score'])")).to_be_hidden()
