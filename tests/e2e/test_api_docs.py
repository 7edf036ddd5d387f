"""The API docs page renders in Chromium under the production Content-Security-Policy (no CDN, no inline script)."""
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import log_in, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_lists_the_operations_with_the_csp_in_force(new_page, dev):
    page = new_page()
    refused = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text or "Refused" in message.text else None)
    log_in(page, "dev")
    page.click("nav >> text=API")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Rollgate API")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() > 40
    assert page.locator(".opblock-summary-path", has_text="/api/releases/{release_id}/promote/").count() == 1
    screenshot(page, "api-docs")
    assert refused == []
