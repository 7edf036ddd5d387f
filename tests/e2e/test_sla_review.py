"""The SLA gate's sticky manual review in the browser: a release manager reads the gate's sentence, sees why the
ramp waits for a person, settles it with a comment, and the review is gone (audited)."""
import pytest
from playwright.sync_api import expect

from releases.choices import ReleaseStatus as S
from releases.models import AuditEvent
from releases.services import Actor, release_promote
from sla.models import GateRecord
from tests.e2e.conftest import act, log_in, screenshot
from tests.sla.test_gate_v2_api import SUMMARY, gate_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_rm_settles_the_gates_manual_review_in_the_browser(new_page, make_release, live_release, rm, qa):
    canary = act(make_release, "v1.1.0", "staging")
    act(release_promote, actor=Actor.of(rm), release_id=canary.pk)
    act(gate_record, canary)

    # qa reads the same section: the sentence and the reason, but no form (qa may neither resume nor roll back).
    reader = new_page()
    reader.goto("/")
    log_in(reader, "qa")
    reader.goto(f"/releases/{canary.pk}/")
    expect(reader.locator("[data-manual-review]")).to_contain_text("output channel anomaly")
    expect(reader.locator(f"form[action='/sla/releases/{canary.pk}/acknowledge/']")).to_have_count(0)

    page = new_page()
    page.goto("/")
    log_in(page, "rm")
    page.goto(f"/releases/{canary.pk}/")
    section = page.locator("[data-manual-review]")
    expect(page.locator("body")).to_contain_text(SUMMARY)
    expect(section).to_contain_text("Manual review needed")
    screenshot(page, "sla-manual-review")

    # An empty comment is refused by the browser itself (required), then by the server if forced.
    form = page.locator(f"form[action='/sla/releases/{canary.pk}/acknowledge/']")
    form.locator("textarea, input[name=comment]").first.fill("callback sink fixed downstream")
    form.locator("button[value=resume]").click()
    expect(page.locator("body")).to_contain_text("manual review settled")
    expect(page.locator("[data-manual-review]")).to_have_count(0)
    record = GateRecord.objects.get(pk=canary.pk)
    assert record.state["manual_review"] is None
    ack = AuditEvent.objects.get(release=canary, action="sla.manual_review.acknowledge")
    assert (ack.actor_name, ack.reason, ack.details["decision"]) == ("rm", "callback sink fixed downstream", "resume")
    canary.refresh_from_db()
    assert canary.status == S.GRAY
    screenshot(page, "sla-manual-review-settled")
