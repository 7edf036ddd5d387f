"""A walk through the main pages in Chinese (zh-hans), as a browser set to Chinese in Shanghai sees them:
the language from Accept-Language, the time zone from the browser (timezone.js), screenshots of each page."""
import pytest
from playwright.sync_api import expect

from releases.services import Actor, release_promote
from tests.e2e.conftest import act, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_main_pages_in_zh_hans_with_local_times(browser, server_url, make_release, rm):
    live = act(make_release, "v1.0.0", "staging")
    act(release_promote, actor=Actor.of(rm), release_id=live.pk)
    waiting = act(make_release, "v1.1.0", "prod")
    context = browser.new_context(base_url=server_url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  viewport={"width": 1360, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto("/login/")
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator("button[type=submit]")).to_have_text("登录")
        screenshot(page, "zh-hans-login")
        page.fill("input[name=username]", "rm")
        page.fill("input[name=password]", "pw-rm")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("服务总览")
        expect(page.locator("nav")).to_contain_text("审批")
        expect(page.locator("nav")).to_contain_text("审计日志")
        expect(page.locator("p.summary")).to_contain_text("个服务")
        screenshot(page, "zh-hans-fleet")

        page.click("nav >> text=审计日志")
        expect(page.locator("h1")).to_have_text("审计日志")
        # the browser's time zone (Asia/Shanghai) reached the server through timezone.js's cookie
        expect(page.locator("table.audit thead")).to_contain_text("时间（Asia/Shanghai）")
        screenshot(page, "zh-hans-audit")

        page.click("nav >> text=环境")
        expect(page.locator("h1")).to_have_text("环境")
        expect(page.locator("table.list thead")).to_contain_text("冻结窗口")
        screenshot(page, "zh-hans-environments")

        page.click("nav >> text=通知")
        expect(page.locator("h1")).to_have_text("通知")
        expect(page.locator("table.subscriptions")).to_contain_text("还没有订阅。")
        screenshot(page, "zh-hans-notifications")

        page.click("nav >> text=SLA")
        expect(page.locator("h1")).to_have_text("SLA 快照")
        screenshot(page, "zh-hans-sla-reports")

        page.click("nav >> text=审批")
        expect(page.locator("h1")).to_have_text("审批收件箱")
        expect(page.locator("#inbox")).to_contain_text(f"#{waiting.pk}")
        screenshot(page, "zh-hans-approvals")

        page.goto(f"/releases/{waiting.pk}/")
        expect(page.locator("#approvals h2")).to_have_text("审批")
        expect(page.locator("button[data-action=approve]")).to_have_text("批准")
        expect(page.locator("#sla-section h2")).to_contain_text("SLA 闸门")  # the section loaded itself (htmx)
        screenshot(page, "zh-hans-release")

        page.goto("/environments/prod/")
        expect(page.locator("#env-summary")).to_contain_text("在此运行")
        expect(page.locator("body")).to_contain_text("只有运维可以修改环境")
        screenshot(page, "zh-hans-environment")

        page.click("a[data-link=sla-policy]")
        expect(page.locator("h1")).to_contain_text("SLA 策略")
        expect(page.locator("body")).to_contain_text("从未保存：使用默认值。")
        screenshot(page, "zh-hans-sla-policy")

        page.click("header .who a")
        expect(page.locator("h1")).to_have_text("偏好设置")
        page.select_option("form.preferences select[name=language]", "en")
        page.click("form.preferences button")
        expect(page.locator("h1")).to_have_text("Preferences")  # the language switch took effect
        expect(page.locator("nav")).to_contain_text("Fleet")
        screenshot(page, "en-preferences-after-switch")
    finally:
        context.close()
