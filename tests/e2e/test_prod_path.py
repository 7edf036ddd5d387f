"""The prod path in two browsers (issue 15): a version verified in staging goes on to prod, rm and qa approve it
on the evidence shown, the approvals go stale when a new snapshot blocks and are given again, and the ramp waits at
the 50 % gray step until qa approves it; then it goes live."""
import pytest
from playwright.sync_api import expect

from releases.choices import ReleaseStatus as S
from releases.models import Environment, Release
from releases.services import (Actor, approvals_mark_stale, release_approve, release_create, release_promote,
                               release_promote_next_env, release_worker_transition)
from tests.conftest import sha
from tests.e2e.conftest import act, log_in, screenshot, wait_live
from tests.e2e.test_release_control import confirm

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _built(release):
    act(release_worker_transition, release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
        actor_name="pipeline", action="pipeline.succeeded")


def _set_up(dev, rm2, qa, rm):
    """prod: qa before 50 %; v1.0.0 live there. staging: v2.0.0 live (verified)."""
    Environment.objects.filter(name="prod").update(gray_step_approvals={"50": {"qa": 1}})
    first = act(release_create, actor=Actor.of(dev), service="agent-infer", environment="prod", tag="v1.0.0",
                commit=sha())
    _built(first)
    act(release_approve, actor=Actor.of(rm2), release_id=first.pk)
    act(release_approve, actor=Actor.of(qa), release_id=first.pk)
    act(release_promote, actor=Actor.of(rm), release_id=first.pk)
    staging = act(release_create, actor=Actor.of(dev), service="agent-infer", environment="staging", tag="v2.0.0",
                  commit=sha())
    _built(staging)
    act(release_promote, actor=Actor.of(rm), release_id=staging.pk)
    return staging


def test_prod_path_with_rm_and_qa_stale_approvals_and_the_gray_step_wait(new_page, environments, service, dev, rm,
                                                                         rm2, qa):
    staging = _set_up(dev, rm2, qa, rm)
    rm_page = new_page()
    log_in(rm_page, "rm")
    rm_page.goto(f"/releases/{staging.pk}/")
    expect(rm_page.locator("button[data-action=promote_next_env]")).to_have_text("Promote to prod")
    # dev sends it on (the CLI's call); the prod release reuses staging's image.
    prod, _ = act(release_promote_next_env, actor=Actor.of(dev), release_id=staging.pk)
    _built(prod)

    rm_page.goto(f"/releases/{prod.pk}/")
    wait_live(rm_page)
    expect(rm_page.locator("#evidence [data-evidence=sla]")).to_contain_text(f"staging (release #{staging.pk}, live)")
    expect(rm_page.locator("#evidence [data-evidence=values]")).to_contain_text("running v1.0.0")
    confirm(rm_page, "approve", comment="staging verified")
    qa_page = new_page()
    log_in(qa_page, "qa")
    qa_page.goto("/approvals/")
    qa_page.click(f"#inbox a[href='/releases/{prod.pk}/']")
    wait_live(qa_page)
    confirm(qa_page, "approve", comment="snapshot green")
    promote = rm_page.locator("button[data-action=promote]")
    expect(promote).to_be_enabled()

    # A new snapshot in staging blocks: both approvals go stale in front of both people, and promote locks again.
    act(approvals_mark_stale, service_id=prod.service_id, tag="v2.0.0", after_position=2, actor_name="sla-gate",
        reason="a new SLA snapshot of v2.0.0 in staging blocks (pause): success below the floor")
    expect(rm_page.locator("#approvals [data-stale]")).to_have_count(2)
    expect(qa_page.locator("#approvals")).to_contain_text("stale: a new SLA snapshot of v2.0.0 in staging blocks")
    expect(promote).to_be_disabled()
    expect(rm_page.locator("[data-why=promote]")).to_have_text("waiting for approval from 1 qa, 1 release_manager")
    screenshot(qa_page, "prod-approvals-stale")
    confirm(qa_page, "approve", comment="looked again: staging fix deployed")
    confirm(rm_page, "approve", comment="looked again")
    expect(promote).to_be_enabled()

    for weight in ("5", "10", "30"):
        confirm(rm_page, "promote")
        expect(rm_page.locator("#gray-weight")).to_have_text(weight)
    # At 30 % the ramp waits for qa before 50 %: said on both pages; qa approves the step.
    expect(promote).to_be_disabled()
    expect(rm_page.locator("[data-why=promote]")).to_have_text("waiting for qa's approval to go to 50 %")
    expect(rm_page.locator("[data-why=approve]")).to_have_text("going to 50 % takes approvals from qa")
    expect(qa_page.locator("[data-step-wait]")).to_have_text("waiting for qa's approval to go to 50 %")
    expect(qa_page.locator("button[data-action=approve]")).to_have_text("Approve going to 50 %")
    screenshot(rm_page, "prod-gray-step-wait")
    qa_page.goto("/approvals/")
    expect(qa_page.locator("[data-step-waits]")).to_contain_text("waiting for qa's approval to go to 50 %")
    qa_page.goto(f"/releases/{prod.pk}/")
    wait_live(qa_page)
    confirm(qa_page, "approve", comment="30 % numbers fine")
    expect(promote).to_be_enabled()
    confirm(rm_page, "promote")
    expect(rm_page.locator("#gray-weight")).to_have_text("50")
    confirm(rm_page, "promote")  # 50 -> 100 %: the last rung
    expect(rm_page.locator("#release-status")).to_have_text("live")
    expect(qa_page.locator("#release-status")).to_have_text("live")
    assert Release.objects.get(pk=prod.pk).status == S.LIVE
