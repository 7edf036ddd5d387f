"""Start a release in the browser (issue 15): the conventions are checked as the developer types, the error names
the rule, and a form that fits starts the release and opens its page."""
import pytest
from playwright.sync_api import expect

from releases.models import Release
from tests.conftest import sha
from tests.e2e.conftest import log_in, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_developer_starts_a_release_with_the_conventions_checked_as_they_type(new_page, environments, service, dev):
    page = new_page()
    log_in(page, "dev")
    page.click("nav a[data-link=release-new]")
    expect(page.locator("h1")).to_have_text("Start a release")
    page.select_option("#f-service", "agent-infer")
    page.select_option("#f-environment", "prod")
    page.fill("#f-tag", "v2.3.0-rc1")
    problems = page.locator("#release-checks [data-problem=tag]")
    expect(problems).to_contain_text("v2.3.0-rc1 is a Staging candidate (vX.Y.Z-rcN) tag; it may be released to dev, "
                                     "staging, test, not prod")
    page.fill("#f-commit", "12345")
    expect(page.locator("#release-checks [data-problem=commit]")).to_contain_text("40-character")
    screenshot(page, "start-release-checks")
    page.select_option("#f-environment", "staging")
    commit = sha()
    page.fill("#f-commit", commit)
    page.fill("#f-branch", "release/v2.3.0")
    expect(page.locator("#release-checks [data-checks=ok]")).to_contain_text("agent-infer v2.3.0-rc1 → staging")
    page.click("button[data-action=start-release]")
    expect(page.locator("#release-status")).to_have_text("pending")
    release = Release.objects.get(version__tag="v2.3.0-rc1")
    assert page.url.endswith(f"/releases/{release.pk}/")
    assert (release.environment.name, release.version.commit_sha, release.started_by.username) == (
        "staging", commit, "dev")
    expect(page.locator(".messages")).to_contain_text(f"release #{release.pk} started")
