"""The deploy sweeper (issue 13): a rollout or traffic change whose message was lost is sent again, a rollout whose
worker died is taken over, and a release whose records say one thing serves while the target was never told is put
in line: what the records say serves is what runs.

The target is the FileDriver of test_rollout_path (each running version is a file; weights and go-lives are
recorded). Messages are queued for real to this run's Redis, then lost (tests/durable.py).
"""
import datetime as dt

import pytest

from deploy import drivers
from deploy.models import Rollout, RolloutStatus
from deploy.sweeper import deploy_sweep
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import Release
from releases.services import Actor, release_promote, release_rollback
from tests.deploy.test_rollout_path import FileDriver, running
from tests.durable import eager, later, lost_messages

pytestmark = pytest.mark.django_db(transaction=True)
S, RS = ReleaseStatus, RolloutStatus


class RecordingDriver(FileDriver):
    def __init__(self, directory):
        super().__init__(directory)
        self.lives: list[int] = []

    def go_live(self, *, release_id, log):
        self.lives.append(release_id)


@pytest.fixture(autouse=True)
def no_debounce(settings):
    settings.ROLLGATE_PROMOTE_DEBOUNCE_SECONDS = 0  # the steps here follow each other at once, on purpose


@pytest.fixture
def target(environments, tmp_path):
    environments["staging"].deploy_target = DeployTargetKind.LOCAL
    environments["staging"].save()
    previous = drivers._DRIVERS.get(DeployTargetKind.LOCAL)
    driver = RecordingDriver(tmp_path)
    drivers.register_driver(DeployTargetKind.LOCAL, driver)
    yield driver
    drivers._DRIVERS.pop(DeployTargetKind.LOCAL, None)
    if previous is not None:
        drivers.register_driver(DeployTargetKind.LOCAL, previous)


def stable_and_canary(make_release, rm, target):
    with eager():
        stable = make_release("v1.0.0")
        release_promote(actor=Actor.of(rm), release_id=stable.pk)
    canary = make_release("v1.1.0")
    return stable, canary


@pytest.mark.parametrize("redrive_after", [5.0, 40.0])
def test_a_promotion_whose_rollout_message_was_lost_is_rolled_out_after_the_delay(
        settings, make_release, rm, target, tmp_path, redrive_after):
    settings.ROLLGATE_REDRIVE_AFTER_SECONDS = redrive_after
    stable, canary = stable_and_canary(make_release, rm, target)
    with lost_messages() as broker:
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
        assert broker.llen("celery") == 1  # deploy.rollout_run, queued and then lost
    assert Release.objects.get(pk=canary.pk).status == S.DEPLOYING
    assert Rollout.objects.get(release=canary).status == RS.PENDING
    Release.objects.filter(pk=canary.pk).update(status_changed_at=later(-redrive_after - 1))
    queued = Rollout.objects.get(release=canary).queued_at
    with eager():
        assert deploy_sweep(now=queued + dt.timedelta(seconds=redrive_after - 1)).total == 0
        report = deploy_sweep(now=queued + dt.timedelta(seconds=redrive_after + 1))
    assert report.rollouts_requeued == [canary.pk]
    canary.refresh_from_db()
    assert (canary.status, canary.gray_weight) == (S.GRAY, 5)
    assert running(tmp_path) == {"v1.0.0", "v1.1.0"} and target.weights == [5]
    rollout = Rollout.objects.get(release=canary)
    assert (rollout.status, rollout.redrives) == (RS.SUCCEEDED, 1)
    assert "queued again" in rollout.log


def test_a_rollout_whose_worker_died_is_taken_over(settings, make_release, rm, target, tmp_path):
    from deploy import rollouts

    settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS = 8.0
    stable, canary = stable_and_canary(make_release, rm, target)
    with lost_messages():
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
    assert rollouts.rollout_claim(release_id=canary.pk, task_id="dies") is not None
    Rollout.objects.filter(release=canary).update(queued_at=later(-20), heartbeat_at=later(-4))
    with eager():
        assert deploy_sweep().rollouts_taken_over == []
        Rollout.objects.filter(release=canary).update(heartbeat_at=later(-9))
        assert deploy_sweep().rollouts_taken_over == [canary.pk]
    rollout = Rollout.objects.get(release=canary)
    assert (rollout.status, rollout.attempt) == (RS.SUCCEEDED, 2)
    assert Release.objects.get(pk=canary.pk).status == S.GRAY


@pytest.mark.parametrize("weights", [[10], [10, 30], [10, 30, 50]])
def test_lost_weight_changes_reach_the_target_newest_only(make_release, rm, target, weights):
    stable, canary = stable_and_canary(make_release, rm, target)
    with eager():
        release_promote(actor=Actor.of(rm), release_id=canary.pk)  # 5 %
    with lost_messages():
        previous = 5
        for weight in weights:
            release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=previous)
            previous = weight
    assert Release.objects.get(pk=canary.pk).gray_weight == weights[-1]
    rollout = Rollout.objects.get(release=canary)
    assert (rollout.traffic_seq, rollout.traffic_applied_seq) == (1 + len(weights), 1)
    with eager():
        report = deploy_sweep(now=later(60))
    assert report.traffic_resent == [canary.pk]
    # The target gets the weight the records hold; the older lost ones are moot and never applied.
    assert target.weights == [5, weights[-1]]
    rollout.refresh_from_db()
    assert rollout.traffic_applied_seq == rollout.traffic_seq


def test_a_lost_go_live_is_sent_again(make_release, rm, target):
    stable, canary = stable_and_canary(make_release, rm, target)
    with eager():
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
    with lost_messages():
        release_promote(actor=Actor.of(rm), release_id=canary.pk, full=True)
    assert Release.objects.get(pk=canary.pk).status == S.LIVE
    assert canary.pk not in target.lives
    with eager():
        assert deploy_sweep(now=later(60)).traffic_resent == [canary.pk]
        assert deploy_sweep(now=later(3600)).total == 0  # applied now: nothing more to send
    assert target.lives.count(canary.pk) == 1


def test_a_lost_rollback_cut_is_sent_again(make_release, rm, target, tmp_path):
    stable, canary = stable_and_canary(make_release, rm, target)
    with eager():
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
    assert running(tmp_path) == {"v1.0.0", "v1.1.0"}
    with lost_messages():
        release_rollback(actor=Actor.of(rm), release_id=canary.pk, comment="error rate doubled")
    assert running(tmp_path) == {"v1.0.0", "v1.1.0"}  # the records say rolled back; the canary still runs
    with eager():
        deploy_sweep(now=later(60))
    assert running(tmp_path) == {"v1.0.0"}


def test_a_live_release_whose_go_live_was_never_queued_is_put_in_line(make_release, rm, target):
    """The receiver never ran (the process died between commit and its on-commit work): no traffic change is
    recorded at all. The release's status says it serves; the sweeper queues what that calls for."""
    stable, canary = stable_and_canary(make_release, rm, target)
    with eager():
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
        release_promote(actor=Actor.of(rm), release_id=canary.pk, full=True)
    target.lives.clear()
    Rollout.objects.filter(release=canary).update(traffic_task="deploy.set_weight", traffic_args=[canary.pk, 5, 1],
                                                  traffic_seq=1, traffic_applied_seq=1)
    with eager():
        assert deploy_sweep().total == 0  # just changed: the receiver may still be on it
        Release.objects.filter(pk=canary.pk).update(status_changed_at=later(-120))
        report = deploy_sweep()
    assert report.traffic_reconciled == [canary.pk]
    assert target.lives == [canary.pk]
    rollout = Rollout.objects.get(release=canary)
    assert (rollout.traffic_task, rollout.traffic_applied_seq) == ("deploy.go_live", 2)


def test_an_old_cut_is_never_reapplied_over_a_newer_canary(make_release, rm, target, tmp_path):
    """A rolled-back release with no recorded cut (history from before traffic changes were recorded) is left
    alone once a later rollout of the same service and environment exists, or once it is older than the window."""
    stable, canary = stable_and_canary(make_release, rm, target)
    with eager():
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
        release_rollback(actor=Actor.of(rm), release_id=canary.pk, comment="bad canary")
        newer = make_release("v1.2.0")
        release_promote(actor=Actor.of(rm), release_id=newer.pk)
    Rollout.objects.filter(release=canary).update(traffic_task="", traffic_args=[], traffic_seq=0,
                                                  traffic_applied_seq=0)
    Release.objects.filter(pk=canary.pk).update(status_changed_at=later(-120))
    with eager():
        report = deploy_sweep()
    assert canary.pk not in report.traffic_reconciled
    assert Rollout.objects.get(release=canary).traffic_task == ""
    assert running(tmp_path) == {"v1.0.0", "v1.2.0"}  # the newer canary keeps running
