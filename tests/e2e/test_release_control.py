"""Release control in the browser: live updates, approvals across two people, promote, roll back, refusals."""
import json
import re

import pytest
from playwright.sync_api import expect

from releases.choices import ReleaseStatus as S
from releases.models import AgentService
from releases.services import Actor, release_approve, release_create, release_promote, release_worker_transition
from tests.conftest import sha
from tests.e2e.conftest import act, log_in, screenshot, wait_live

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def confirm(page, action: str, comment: str = ""):
    """Click an action button, check the dialog names the release, confirm it."""
    page.click(f"button[data-action={action}]")
    dialog = page.locator("dialog#confirm-action")
    expect(dialog).to_be_visible()
    if comment:
        page.fill("#confirm-comment", comment)
    page.click("#confirm-ok")
    expect(dialog).to_be_hidden()


def test_rm_sees_pipeline_changes_arrive_without_reload(new_page, make_release, live_release, rm):
    release = act(make_release, "v1.1.0", "staging", status=S.PENDING)
    page = new_page()
    page.goto("/")
    log_in(page, "rm")
    expect(page.locator("table.fleet")).to_contain_text("agent-infer")
    page.goto(f"/releases/{release.pk}/")
    wait_live(page)
    page.evaluate("window.loadedOnce = 'yes'")
    expect(page.locator("#release-status")).to_have_text("pending")

    assert act(release_worker_transition, release_id=release.pk, from_statuses={S.PENDING}, to_status=S.BUILDING,
                                     actor_name="pipeline", action="pipeline.started", reason="build started")
    expect(page.locator("#release-status")).to_have_text("building")
    expect(page.locator("table.timeline")).to_contain_text("pipeline.started")
    assert act(release_worker_transition, release_id=release.pk, from_statuses={S.BUILDING}, to_status=S.READY,
                                     actor_name="pipeline", action="pipeline.succeeded")
    expect(page.locator("#release-status")).to_have_text("ready")
    expect(page.locator("button[data-action=promote]")).to_be_enabled()
    assert page.evaluate("window.loadedOnce") == "yes", "the page reloaded instead of updating in place"


def _prod_with_live_release(dev, rm2, qa, rm):
    """prod has v1.0.0 live (approved by rm2 and qa); returns nothing, the caller starts the next release."""
    first = act(release_create, actor=Actor.of(dev), service="agent-infer", environment="prod", tag="v1.0.0",
                           commit=sha())
    act(release_worker_transition, release_id=first.pk, from_statuses={S.PENDING}, to_status=S.READY,
                              actor_name="pipeline", action="pipeline.succeeded")
    act(release_approve, actor=Actor.of(rm2), release_id=first.pk, comment="first prod release")
    act(release_approve, actor=Actor.of(qa), release_id=first.pk)
    act(release_promote, actor=Actor.of(rm), release_id=first.pk)
    return first


def test_prod_promotion_is_held_until_qa_approves_then_promote_and_roll_back(new_page, environments, service, dev,
                                                                             rm, rm2, qa):
    _prod_with_live_release(dev, rm2, qa, rm)
    release = act(release_create, actor=Actor.of(dev), service="agent-infer", environment="prod", tag="v1.1.0",
                             commit=sha())
    act(release_worker_transition, release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                              actor_name="pipeline", action="pipeline.succeeded")

    rm_page = new_page()
    log_in(rm_page, "rm")
    rm_page.goto(f"/releases/{release.pk}/")
    wait_live(rm_page)
    promote = rm_page.locator("button[data-action=promote]")
    expect(promote).to_be_disabled()
    expect(rm_page.locator("[data-why=promote]")).to_have_text("waiting for approval from 1 qa, 1 release_manager")

    # the dialog can be cancelled without effect
    rm_page.click("button[data-action=approve]")
    expect(rm_page.locator("#confirm-text")).to_contain_text(f"Approve #{release.pk} agent-infer v1.1.0 in prod?")
    rm_page.click("#confirm-cancel")
    expect(rm_page.locator("dialog#confirm-action")).to_be_hidden()
    confirm(rm_page, "approve", comment="ramp plan reviewed")
    expect(rm_page.locator(".messages")).to_contain_text("approve: done")
    expect(rm_page.locator("[data-why=promote]")).to_have_text("waiting for approval from 1 qa")
    expect(rm_page.locator("button[data-action=approve]")).to_be_disabled()

    qa_page = new_page()
    log_in(qa_page, "qa")
    qa_page.goto("/approvals/")
    expect(qa_page.locator("#inbox")).to_contain_text("v1.1.0")
    screenshot(qa_page, "approvals-inbox")
    qa_page.click(f"#inbox a[href='/releases/{release.pk}/']")
    wait_live(qa_page)
    expect(qa_page.locator("button[data-action=promote]")).to_be_disabled()
    confirm(qa_page, "approve", comment="SLA snapshot green")

    # rm's page learns about qa's approval through the websocket: promote unlocks without a reload
    expect(promote).to_be_enabled()
    expect(rm_page.locator("#approvals")).to_contain_text("SLA snapshot green")
    confirm(rm_page, "promote")
    expect(rm_page.locator("#release-status")).to_have_text("gray")
    expect(rm_page.locator("#gray-weight")).to_have_text("5")
    expect(rm_page.locator(".ladder li.current")).to_have_text("5 %")
    expect(qa_page.locator("#release-status")).to_have_text("gray")  # everyone watching sees it
    screenshot(rm_page, "release")

    confirm(rm_page, "rollback", comment="p95 regression")
    expect(rm_page.locator("#release-status")).to_have_text("rolled back")
    expect(rm_page.locator("#release")).to_contain_text("v1.1.0 serves 0 %")
    expect(rm_page.locator("button[data-action=promote]")).to_have_count(0)  # a final release offers no promote
    expect(qa_page.locator("#release-status")).to_have_text("rolled back")
    expect(qa_page.locator("table.timeline")).to_contain_text("p95 regression")


def test_qa_sees_promote_disabled_with_its_reason_and_reject_needs_a_reason(new_page, make_release, live_release,
                                                                            qa, rm):
    release = act(make_release, "v1.1.0", "staging")
    act(release_promote, actor=Actor.of(rm), release_id=release.pk)  # a canary: rollback applies (not to ready)
    page = new_page()
    log_in(page, "qa")
    page.goto(f"/releases/{release.pk}/")
    expect(page.locator("button[data-action=promote]")).to_be_disabled()
    expect(page.locator("[data-why=promote]")).to_have_text("only release_manager may promote releases; you are qa")
    expect(page.locator("[data-why=rollback]")).to_contain_text("only release_manager, ops may roll back releases")


def test_prod_reject_needs_a_reason(new_page, environments, service, dev, qa):
    release = act(release_create, actor=Actor.of(dev), service="agent-infer", environment="prod", tag="v1.0.0",
                             commit=sha())
    page = new_page()
    log_in(page, "qa")
    page.goto(f"/releases/{release.pk}/")
    wait_live(page)
    page.click("button[data-action=reject]")
    page.click("#confirm-ok")  # empty reason: the dialog stays open and says why
    expect(page.locator("dialog#confirm-action")).to_be_visible()
    assert page.evaluate("document.getElementById('confirm-comment').validationMessage") == \
        "a rejection needs a reason"
    page.fill("#confirm-comment", "wrong base image")
    page.click("#confirm-ok")
    expect(page.locator("#release-status")).to_have_text("rejected")


def test_main_pages_render_for_their_roles(new_page, environments, dev, rm, ops, auditor):
    for index, name in enumerate(["agent-chat", "agent-infer", "agent-plan", "agent-rag", "agent-search"]):
        AgentService.objects.create(name=name, image_repository=f"registry.example.com/agent/{name}")
        commit = sha()
        for env in ("dev", "test", "staging"):
            r = act(release_create, actor=Actor.of(dev), service=name, environment=env, tag=f"v1.{index}.0",
                               commit=commit)
            act(release_worker_transition, release_id=r.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                      actor_name="pipeline", action="pipeline.succeeded")
            act(release_promote, actor=Actor.of(rm), release_id=r.pk)
        if index % 2 == 0:
            r = act(release_create, actor=Actor.of(dev), service=name, environment="staging", tag=f"v1.{index}.1",
                               commit=sha())
            act(release_worker_transition, release_id=r.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                      actor_name="pipeline", action="pipeline.succeeded")
            act(release_promote, actor=Actor.of(rm), release_id=r.pk)
        act(release_create, actor=Actor.of(dev), service=name, environment="prod", tag=f"v1.{index}.0", commit=commit)

    page = new_page()
    page.goto("/")
    expect(page.locator("input[name=username]")).to_be_visible()
    screenshot(page, "login")
    log_in(page, "rm")
    expect(page.locator("#pending-approvals")).to_have_text("5")
    screenshot(page, "fleet")
    page.select_option("select[name=status]", "gray")
    expect(page.locator("table.fleet tbody th.service")).to_have_count(3)
    assert re.search(r"status=gray", page.url)

    page = new_page()
    log_in(page, "auditor")
    page.goto("/audit/")
    expect(page.locator("table.audit")).to_contain_text("release.promote")
    page.fill("input[name=actor]", "pipeline")
    page.click("form.filters button[type=submit]")
    expect(page.locator("table.audit tbody")).not_to_contain_text("release.promote")
    screenshot(page, "audit-log")

    page = new_page()
    log_in(page, "ops")
    page.goto("/environments/prod/")
    page.fill("textarea[name=freeze_windows]", json.dumps([{"weekdays": [4], "from": "18:00", "to": "12:00"}]))
    page.click("form.env-form button[type=submit]")
    expect(page.locator("#freeze-error")).to_have_text(
        "freeze_windows[0].to: must be after 'from' (split a window that crosses midnight)")
    page.fill("textarea[name=freeze_windows]", json.dumps([{"weekdays": [4], "from": "18:00", "to": "23:59",
                                                              "reason": "Friday evening"}]))
    page.click("form.env-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("prod: saved freeze_windows")
    expect(page.locator("#env-summary")).to_contain_text("frozen Fri 18:00-23:59 UTC (Friday evening)")
    screenshot(page, "environment")
