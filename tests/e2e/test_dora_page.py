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
