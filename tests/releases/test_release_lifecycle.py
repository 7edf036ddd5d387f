"""The release state machine as release managers use it: ramp, approvals, pause, rollback, freeze, audit."""
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from releases.choices import ReleaseStatus as S
from releases.errors import ActionBlocked, Forbidden, InvalidInput, TransitionNotAllowed
from releases.models import AuditEvent, Release
from releases.services import (
    Actor, release_approve, release_pause, release_promote, release_reject, release_resume, release_rollback,
    release_worker_transition,
)


def test_promote_walks_the_gray_ladder_and_supersedes_the_stable_release(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    weights = []
    for _ in range(5):
        release = release_promote(actor=Actor.of(rm), release_id=release.pk, expected_weight=release.gray_weight)
        weights.append((release.status, release.gray_weight))
    assert weights == [(S.GRAY, 5), (S.GRAY, 10), (S.GRAY, 30), (S.GRAY, 50), (S.LIVE, 100)]
    live_release.refresh_from_db()
    assert live_release.status == S.SUPERSEDED
    assert release.previous_release_id == live_release.pk
    with pytest.raises(TransitionNotAllowed, match="live"):
        release_promote(actor=Actor.of(rm), release_id=release.pk)


def test_first_release_in_an_environment_goes_live_directly(make_release, rm):
    release = release_promote(actor=Actor.of(rm), release_id=make_release("v1.0.0", "dev").pk)
    assert (release.status, release.gray_weight) == (S.LIVE, 100)
    assert "nothing is live yet" in release.status_reason


def test_every_transition_writes_an_audit_row_with_actor_states_and_reason(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk, comment="metrics look fine")
    event = AuditEvent.objects.filter(release=release, action="release.promote").get()
    assert (event.actor_name, event.from_state, event.to_state, event.reason) == ("rm", "ready", "gray",
                                                                                   "metrics look fine")
    assert event.details["to_weight"] == 5 and event.created_at is not None


def test_prod_promotion_is_held_until_release_manager_and_qa_approve(environments, service, make_release, rm,
                                                                     rm2, qa, dev):
    release = make_release("v2.0.0", "prod", by=dev)
    with pytest.raises(ActionBlocked, match="needs approval from 1 qa, 1 release_manager"):
        release_promote(actor=Actor.of(rm), release_id=release.pk)
    release_approve(actor=Actor.of(rm2), release_id=release.pk, comment="ok")
    with pytest.raises(ActionBlocked, match="1 qa"):
        release_promote(actor=Actor.of(rm), release_id=release.pk)
    release_approve(actor=Actor.of(qa), release_id=release.pk)
    assert release_promote(actor=Actor.of(rm), release_id=release.pk).status == S.LIVE


def test_whoever_started_a_release_cannot_approve_it(make_release, rm):
    release = make_release("v2.0.0", "prod", by=rm)
    with pytest.raises(Forbidden, match="someone else"):
        release_approve(actor=Actor.of(rm), release_id=release.pk)
    assert not release.approvals.exists()


def test_a_rejection_needs_a_reason_and_stops_the_release(make_release, qa, rm):
    release = make_release("v2.0.0", "prod")
    with pytest.raises(InvalidInput, match="comment"):
        release_reject(actor=Actor.of(qa), release_id=release.pk, comment="  ")
    release_reject(actor=Actor.of(qa), release_id=release.pk, comment="regression in tool calls")
    release.refresh_from_db()
    assert release.status == S.REJECTED and release.status_reason == "regression in tool calls"
    with pytest.raises(TransitionNotAllowed, match="rejected"):
        release_promote(actor=Actor.of(rm), release_id=release.pk)


def test_pause_holds_the_ramp_until_resumed(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release_pause(actor=Actor.of(rm), release_id=release.pk, comment="watching a spike")
    with pytest.raises(TransitionNotAllowed, match="paused; resume it"):
        release_promote(actor=Actor.of(rm), release_id=release.pk)
    assert release_resume(actor=Actor.of(rm), release_id=release.pk).status == S.GRAY
    assert release_promote(actor=Actor.of(rm), release_id=release.pk, expected_weight=5).gray_weight == 10


def test_a_second_click_on_promote_does_not_skip_a_phase(live_release, make_release, rm, rm2):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk, expected_weight=0)
    with pytest.raises(TransitionNotAllowed, match="is at 5 %, not 0 %"):
        release_promote(actor=Actor.of(rm2), release_id=release.pk, expected_weight=0)
    with pytest.raises(TransitionNotAllowed, match="moved to 5 % .* s ago"):
        release_promote(actor=Actor.of(rm2), release_id=release.pk)
    release.refresh_from_db()
    assert release.gray_weight == 5


def test_rolling_back_a_canary_cuts_its_traffic_and_keeps_stable(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release = release_rollback(actor=Actor.of(rm), release_id=release.pk, comment="p95 up")
    assert (release.status, release.gray_weight) == (S.ROLLED_BACK, 0)
    live_release.refresh_from_db()
    assert live_release.status == S.LIVE


def test_rolling_back_a_live_release_restores_the_one_it_replaced(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk, full=True)
    release_rollback(actor=Actor.of(rm), release_id=release.pk, comment="bad build")
    live_release.refresh_from_db()
    release.refresh_from_db()
    assert (release.status, live_release.status, live_release.gray_weight) == (S.ROLLED_BACK, S.LIVE, 100)
    assert AuditEvent.objects.filter(release=live_release, action="release.restore").exists()


def test_a_release_with_nothing_before_it_cannot_be_rolled_back(make_release, rm):
    release = release_promote(actor=Actor.of(rm), release_id=make_release("v1.0.0", "dev").pk)
    with pytest.raises(TransitionNotAllowed, match="no earlier live release"):
        release_rollback(actor=Actor.of(rm), release_id=release.pk)


def test_only_one_canary_per_service_and_environment(live_release, make_release, rm):
    first = make_release("v1.1.0", "staging")
    second = make_release("v1.2.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=first.pk)
    with pytest.raises(ActionBlocked, match="already gray at 5 %"):
        release_promote(actor=Actor.of(rm), release_id=second.pk)


def test_freeze_window_blocks_promotion_but_not_rollback(live_release, make_release, rm, environments):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    now = timezone.now()
    staging = environments["staging"]
    staging.freeze_windows = [{"start": (now - timedelta(hours=1)).isoformat(),
                               "end": (now + timedelta(hours=1)).isoformat(), "reason": "holiday"}]
    staging.save()
    with pytest.raises(ActionBlocked, match="frozen until .* \\(holiday\\)"):
        release_promote(actor=Actor.of(rm), release_id=release.pk, expected_weight=5)
    assert release_rollback(actor=Actor.of(rm), release_id=release.pk).status == S.ROLLED_BACK


def test_roles_without_the_permission_are_refused_and_nothing_changes(live_release, make_release, qa, dev, auditor):
    release = make_release("v1.1.0", "staging")
    for person in (qa, dev, auditor):
        with pytest.raises(Forbidden, match="only release_manager may promote"):
            release_promote(actor=Actor.of(person), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == S.READY
    assert not AuditEvent.objects.filter(release=release, action="release.promote").exists()


def test_worker_compare_and_set_loses_quietly_when_someone_else_moved_first(make_release):
    release = make_release("v1.1.0", "staging", status=S.PENDING)
    args = dict(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.BUILDING, actor_name="pipeline",
                action="pipeline.start")
    assert release_worker_transition(**args) is True
    assert release_worker_transition(**args) is False
    assert AuditEvent.objects.filter(release=release, action="pipeline.start").count() == 1


def test_worker_transition_outside_the_map_is_refused(make_release):
    release = make_release("v1.1.0", "staging")
    with pytest.raises(TransitionNotAllowed, match="not in the transition map"):
        release_worker_transition(release_id=release.pk, from_statuses={S.READY}, to_status=S.SUPERSEDED,
                                  actor_name="pipeline", action="x")


def test_audit_events_cannot_be_changed_or_deleted(make_release):
    release = make_release("v1.1.0", "staging")
    event = AuditEvent.objects.filter(release=release).first()
    event.reason = "rewritten"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).delete()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the append-only trigger exists on PostgreSQL only")
def test_the_database_refuses_to_rewrite_audit_rows_even_with_raw_sql(make_release):
    release = make_release("v1.1.0", "staging")
    from django.db.utils import DatabaseError

    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE releases_auditevent SET reason = 'x' WHERE release_id = %s", [release.pk])
    assert not AuditEvent.objects.filter(reason="x").exists()
    assert Release.objects.filter(pk=release.pk).exists()


def test_with_a_deploy_target_the_canary_gets_traffic_only_after_its_rollout(live_release, make_release, rm,
                                                                              environments):
    from releases.services import release_rollout_finished

    environments["staging"].deploy_target = "kubernetes"
    environments["staging"].save()
    release = make_release("v1.1.0", "staging")
    release = release_promote(actor=Actor.of(rm), release_id=release.pk)
    assert (release.status, release.gray_weight, release.rollout_weight) == (S.DEPLOYING, 0, 5)
    assert release_rollout_finished(release_id=release.pk, succeeded=True, reason="3/3 pods ready") is True
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 5)
    assert release_rollout_finished(release_id=release.pk, succeeded=True) is False  # delivered twice: no-op


def test_a_failed_rollout_fails_the_release_and_a_late_result_after_rollback_is_ignored(
        live_release, make_release, rm, environments):
    from releases.services import release_rollout_finished

    environments["staging"].deploy_target = "kubernetes"
    environments["staging"].save()
    failing = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=failing.pk)
    release_rollout_finished(release_id=failing.pk, succeeded=False, reason="CrashLoopBackOff")
    failing.refresh_from_db()
    assert (failing.status, failing.status_reason) == (S.FAILED, "CrashLoopBackOff")
    abandoned = make_release("v1.2.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=abandoned.pk)
    release_rollback(actor=Actor.of(rm), release_id=abandoned.pk, comment="wrong build")
    assert release_rollout_finished(release_id=abandoned.pk, succeeded=True) is False
    abandoned.refresh_from_db()
    assert abandoned.status == S.ROLLED_BACK


@pytest.mark.django_db(transaction=True)
def test_other_apps_hear_each_transition_only_after_commit(live_release, make_release, rm):
    from releases.signals import release_transitioned

    heard = []

    def receiver(sender, **kwargs):
        heard.append((kwargs["from_status"], kwargs["to_status"], kwargs["to_weight"], kwargs["actor_name"]))

    release_transitioned.connect(receiver)
    try:
        release = make_release("v1.1.0", "staging")
        heard.clear()
        with transaction.atomic():
            release_promote(actor=Actor.of(rm), release_id=release.pk)
            assert heard == []  # not before commit
        assert heard == [("ready", "gray", 5, "rm")]
    finally:
        release_transitioned.disconnect(receiver)


def test_a_canary_only_rollback_leaves_a_release_promoted_to_live_meanwhile(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk, full=True)
    with pytest.raises(TransitionNotAllowed, match="no longer a canary"):
        release_rollback(actor=Actor.system("sla-gate"), release_id=release.pk, canary_only=True)
    release.refresh_from_db()
    assert release.status == S.LIVE
