"""Approvals bound to evidence and approvals at gray steps (issue 15).

prod requires rm + qa before promotion, qa before the ramp moves to 50 % and rm before 100 %. Whoever moves the
ramp (a person or the SLA gate) waits at the rung below until the step's approvals are given; an approval keeps
the evidence it was shown, and goes stale when later evidence changes the picture."""
import pytest
from django.test import Client

from pipelines import services as pipeline_services
from releases.choices import ReleaseStatus
from releases.errors import ActionBlocked, Forbidden, TransitionNotAllowed
from releases.models import Approval, AuditEvent, Environment, Release
from releases.selectors import (approval_evidence, approval_summary, approvals_inbox_count, approvals_step_waits,
                                evidence_digest)
from releases.services import (Actor, approvals_mark_stale, release_approve, release_create, release_promote,
                               release_reject, release_worker_transition)
from releases.signals import approval_needed
from tests.conftest import client_for, make_user, sha

pytestmark = pytest.mark.django_db
S = ReleaseStatus


@pytest.fixture
def prod(environments):
    env = Environment.objects.get(name="prod")
    env.gray_step_approvals = {"50": {"qa": 1}, "100": {"release_manager": 1}}
    env.save()
    return env


@pytest.fixture
def heard():
    calls = []

    def receiver(sender, signal, **kwargs):
        calls.append(kwargs)

    approval_needed.connect(receiver, dispatch_uid="test-approval-needed")
    yield calls
    approval_needed.disconnect(dispatch_uid="test-approval-needed")


def ready(tag: str, by, env: str = "prod", commit: str | None = None) -> Release:
    release = release_create(actor=Actor.of(by), service="agent-infer", environment=env, tag=tag,
                             commit=commit or sha())
    assert release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                     actor_name="pipeline", action="pipeline.succeeded")
    release.refresh_from_db()
    return release


@pytest.fixture
def canary_at_30(prod, service, dev, rm, rm2, qa, django_capture_on_commit_callbacks):
    """v1.0.0 live in prod, v1.1.0 approved by rm and qa and ramped 5 -> 10 -> 30 %."""
    stable = ready("v1.0.0", dev)
    release_approve(actor=Actor.of(rm), release_id=stable.pk)
    release_approve(actor=Actor.of(qa), release_id=stable.pk)
    release_promote(actor=Actor.of(rm), release_id=stable.pk)
    canary = ready("v1.1.0", dev)
    release_approve(actor=Actor.of(rm), release_id=canary.pk)
    release_approve(actor=Actor.of(qa), release_id=canary.pk)
    for weight in (0, 5, 10):
        release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=weight)
    canary.refresh_from_db()
    assert (canary.status, canary.gray_weight) == (S.GRAY, 30)
    return canary


def test_the_ramp_waits_at_the_rung_below_a_step_until_its_approvals_are_given(canary_at_30, rm, rm2, qa, dev):
    canary = canary_at_30
    for actor in (Actor.of(rm), Actor.system("sla-gate")):  # a person or the SLA gate: the same wait
        with pytest.raises(ActionBlocked) as held:
            release_promote(actor=actor, release_id=canary.pk, expected_weight=30)
        assert "waiting for qa's approval to go to 50 %" in str(held.value)
    canary.refresh_from_db()
    assert (canary.status, canary.gray_weight) == (S.GRAY, 30)
    page = client_for(rm).get(f"/api/releases/{canary.pk}/").json()
    assert page["approvals"]["waiting_at_step"]["words"] == "waiting for qa's approval to go to 50 %"
    assert page["actions"]["promote"]["reason"] == "waiting for qa's approval to go to 50 %"

    # rm cannot give qa's step; qa can, and the step approval does not count for the next step.
    with pytest.raises(Forbidden) as refused:
        release_approve(actor=Actor.of(rm), release_id=canary.pk)
    assert "takes approvals for going to 50 % from qa" in str(refused.value)
    approval = release_approve(actor=Actor.of(qa), release_id=canary.pk, comment="staging numbers look fine")
    assert (approval.step_weight, approval.role) == (50, "qa")
    release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=30)
    canary.refresh_from_db()
    assert canary.gray_weight == 50
    with pytest.raises(ActionBlocked) as held:
        release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=50)
    assert "waiting for release_manager's approval to go to 100 %" in str(held.value)
    release_approve(actor=Actor.of(rm2), release_id=canary.pk)
    release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=50)
    canary.refresh_from_db()
    assert canary.status == S.LIVE
    steps = AuditEvent.objects.filter(release=canary, action="release.approve").order_by("id")
    assert [e.details["step_weight"] for e in steps] == [0, 0, 50, 100]


def test_promote_fully_cannot_skip_a_step_and_the_starter_cannot_approve_one(prod, service, rm, rm2, qa, dev):
    stable = ready("v2.0.0", dev)
    release_approve(actor=Actor.of(rm), release_id=stable.pk)
    release_approve(actor=Actor.of(qa), release_id=stable.pk)
    release_promote(actor=Actor.of(rm), release_id=stable.pk)
    canary = ready("v2.1.0", rm)  # rm started this one
    release_approve(actor=Actor.of(rm2), release_id=canary.pk)
    release_approve(actor=Actor.of(qa), release_id=canary.pk)
    with pytest.raises(ActionBlocked) as held:
        release_promote(actor=Actor.of(rm2), release_id=canary.pk, full=True)
    assert "waiting for qa's approval to go to 50 %" in str(held.value)
    release_promote(actor=Actor.of(rm2), release_id=canary.pk)  # 5 %
    for weight in (5, 10):
        release_promote(actor=Actor.of(rm2), release_id=canary.pk, expected_weight=weight)
    release_approve(actor=Actor.of(qa), release_id=canary.pk)
    release_promote(actor=Actor.of(rm2), release_id=canary.pk, expected_weight=30)
    with pytest.raises(Forbidden) as own:
        release_approve(actor=Actor.of(rm), release_id=canary.pk)
    assert "you started release" in str(own.value)


def test_waiting_at_a_step_is_announced_and_listed_in_the_approvals_inbox(canary_at_30, qa, rm, heard,
                                                                         django_capture_on_commit_callbacks):
    waits = approvals_step_waits(user=qa)
    assert [(w.release.pk, w.weight, w.words) for w in waits] == [
        (canary_at_30.pk, 50, "waiting for qa's approval to go to 50 %")]
    assert approvals_step_waits(user=rm) == []  # rm's role is not needed at 50 %
    qa_page = client_for(qa)
    browser = Client()
    browser.force_login(qa)
    assert approvals_inbox_count(user=qa) == 1 and approvals_inbox_count(user=rm) == 0  # the nav badge
    inbox = browser.get("/approvals/").content.decode()
    assert "waiting for qa&#x27;s approval to go to 50 %" in inbox and f"/releases/{canary_at_30.pk}/" in inbox
    with django_capture_on_commit_callbacks(execute=True):
        release_approve(actor=Actor.of(qa), release_id=canary_at_30.pk)
        release_promote(actor=Actor.of(rm), release_id=canary_at_30.pk, expected_weight=30)
    assert approvals_step_waits(user=qa) == []
    # Arriving at 50 %, the ramp now waits for release_manager before 100 %: the hook says so.
    assert heard[-1]["release_id"] == canary_at_30.pk and heard[-1]["step_weight"] == 100
    assert heard[-1]["missing"] == {"release_manager": 1}
    assert "waiting for release_manager's approval to go to 100 %" in heard[-1]["reason"]
    assert qa_page.get(f"/api/releases/{canary_at_30.pk}/").status_code == 200


def test_a_built_release_in_a_protected_environment_announces_that_it_needs_approvals(prod, service, dev, heard,
                                                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        release = ready("v3.0.0", dev)
    assert heard == [{"release_id": release.pk, "step_weight": 0, "missing": {"qa": 1, "release_manager": 1},
                      "reason": "v3.0.0 is built and waits for approvals from 1 qa, 1 release_manager before "
                                "promotion"}]


def test_an_approval_stores_the_evidence_it_was_shown_and_refuses_a_changed_picture(prod, service, dev, rm, qa):
    release = ready("v4.0.0", dev)
    evidence = client_for(qa).get(f"/api/releases/{release.pk}/evidence/").json()
    assert set(evidence["evidence"]) == {"scan", "sla", "values"} and evidence["step_weight"] == 0
    assert evidence["evidence"]["values"]["note"] == "nothing runs in prod yet"
    assert evidence["evidence"]["sla"]["previous_environment"] is None
    stale_digest = "0" * 64
    refused = client_for(qa).post(f"/api/releases/{release.pk}/approve/", {"evidence_digest": stale_digest},
                                  format="json")
    assert refused.status_code == 409 and "evidence_digest" in refused.json()["errors"]
    assert "changed since your form showed it" in refused.json()["detail"]
    given = client_for(qa).post(f"/api/releases/{release.pk}/approve/", {"evidence_digest": evidence["digest"]},
                                format="json")
    assert given.status_code == 200, given.content
    approval = Approval.objects.get(release=release, user=qa)
    assert approval.evidence == evidence["evidence"] and approval.evidence_digest == evidence["digest"]
    assert approval.evidence_digest == evidence_digest(approval_evidence(release))


def test_stale_approvals_no_longer_count_and_must_be_given_again(prod, service, dev, rm, qa, heard,
                                                                django_capture_on_commit_callbacks):
    release = ready("v5.0.0", dev)
    release_approve(actor=Actor.of(rm), release_id=release.pk)
    release_approve(actor=Actor.of(qa), release_id=release.pk)
    assert approval_summary(release).missing == {}
    with django_capture_on_commit_callbacks(execute=True):
        marked = approvals_mark_stale(service_id=service.pk, tag="v5.0.0", reason="a new SLA snapshot blocks")
    assert marked == 2
    assert approval_summary(release).missing == {"qa": 1, "release_manager": 1}
    assert all(a.stale and a.stale_reason == "a new SLA snapshot blocks" for a in release.approvals.all())
    event = AuditEvent.objects.get(action="release.approvals_stale", release=release)
    assert event.details["stale_approvals"] == 2
    assert heard[-1]["missing"] == {"qa": 1, "release_manager": 1}
    with pytest.raises(ActionBlocked) as held:
        release_promote(actor=Actor.of(rm), release_id=release.pk)
    assert "needs approval from 1 qa, 1 release_manager" in str(held.value)
    body = client_for(rm).get(f"/api/releases/{release.pk}/").json()
    assert [d["stale"] for d in body["approvals"]["decisions"]] == [True, True]
    release_approve(actor=Actor.of(qa), release_id=release.pk)  # given again: allowed
    release_approve(actor=Actor.of(rm), release_id=release.pk)
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == S.LIVE


def test_a_scan_of_the_same_version_that_blocks_makes_its_approvals_elsewhere_stale(
        prod, service, dev, rm, qa, django_capture_on_commit_callbacks):
    commit = sha()
    waiting = ready("v6.0.0", dev, commit=commit)
    release_approve(actor=Actor.of(rm), release_id=waiting.pk)
    release_approve(actor=Actor.of(qa), release_id=waiting.pk)
    rescan = release_create(actor=Actor.of(dev), service="agent-infer", environment="staging", tag="v6.0.0",
                            commit=commit)
    pipeline = pipeline_services.pipeline_start(release_id=rescan.pk)
    for stage in pipeline.stages.order_by("position"):
        claimed = pipeline_services.stage_claim(stage_id=stage.pk, task_id=f"t-{stage.name}")
        if stage.name == "scan":
            break
        assert pipeline_services.stage_succeed(stage_id=stage.pk, attempt=claimed.attempt)
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline_services.stage_block(stage_id=claimed.pk, attempt=claimed.attempt,
                                             reason="1 critical findings")
    assert approval_summary(waiting).missing == {"qa": 1, "release_manager": 1}
    stale = Approval.objects.filter(release=waiting).first()
    assert "found what blocks it: 1 critical findings" in stale.stale_reason


def test_a_rejection_at_a_step_pauses_the_ramp(canary_at_30, qa):
    release_reject(actor=Actor.of(qa), release_id=canary_at_30.pk, comment="error budget nearly spent")
    canary_at_30.refresh_from_db()
    assert canary_at_30.status == S.PAUSED
    assert "qa rejected going to 50 %" in canary_at_30.status_reason
    with pytest.raises(TransitionNotAllowed):
        release_approve(actor=Actor.of(qa), release_id=canary_at_30.pk)  # decided already at this step


def test_release_page_shows_the_step_wait_the_evidence_and_binds_the_approval_to_it(canary_at_30, qa, rm):
    browser = Client()
    browser.force_login(qa)
    page = browser.get(f"/releases/{canary_at_30.pk}/").content.decode()
    assert "waiting for qa&#x27;s approval to go to 50 %" in page
    assert 'data-action="approve"' in page and "Approve going to 50 %" in page
    assert 'data-evidence="scan"' in page and 'data-evidence="sla"' in page and 'data-evidence="values"' in page
    digest = evidence_digest(approval_evidence(canary_at_30))
    assert f'data-evidence-digest="{digest}"' in page
    # A form shown before the evidence changed is refused, with the reason; the current one is taken.
    browser.post(f"/releases/{canary_at_30.pk}/approve/", {"evidence_digest": "f" * 64})
    assert not Approval.objects.filter(release=canary_at_30, user=qa, step_weight=50).exists()
    refused = browser.get(f"/releases/{canary_at_30.pk}/").content.decode()
    assert "changed since your form showed it" in refused
    browser.post(f"/releases/{canary_at_30.pk}/approve/", {"evidence_digest": digest, "comment": "ok to 50"})
    approval = Approval.objects.get(release=canary_at_30, user=qa, step_weight=50)
    assert approval.evidence_digest == digest
    approvals_mark_stale(service_id=canary_at_30.service_id, tag="v1.1.0", reason="rescan found a Critical")
    page = browser.get(f"/releases/{canary_at_30.pk}/").content.decode()
    assert "data-stale" in page and "stale: rescan found a Critical" in page


def test_a_blue_green_cut_over_cannot_skip_a_gray_step(canary_at_30, rm, qa):
    from routing.services import routing_cut_over

    with pytest.raises(ActionBlocked) as held:
        routing_cut_over(actor=Actor.of(rm), service="agent-infer", environment="prod")
    assert "cannot cut-over: waiting for qa's approval to go to 50 %" in str(held.value)
