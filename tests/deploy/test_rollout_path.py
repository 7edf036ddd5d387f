"""The one rollout path: ready -> deploying creates a Rollout, deploy.rollout_run runs the environment's driver and
reports with release_rollout_finished. The pipeline is not involved (it ended when the release was ready).

The driver here is a small real plugin registered for the "local" kind: it writes the rolled-out version into a
file per track (standing in for a process or a pod) and removes it on cancel. Tasks run eagerly, queued by the real
receiver table.
"""
from pathlib import Path

import pytest

from deploy import drivers, rollouts
from deploy.models import Rollout, RolloutStatus
from deploy.receivers import ROUTES, route_for
from deploy.targets.base import DeployOutcome, RolloutResult
from deploy.tasks import deploy_set_weight
from pipelines.models import Pipeline
from releases.choices import ALLOWED_TRANSITIONS, DeployTargetKind, ReleaseStatus
from releases.models import Release
from releases.services import Actor, release_promote, release_rollback

pytestmark = pytest.mark.django_db(transaction=True)
S = ReleaseStatus


class FileDriver:
    """Each running version is a file <dir>/<tag>; weights applied are recorded in order."""

    def __init__(self, directory: Path, fail: bool = False, during_rollout=None):
        self.directory, self.fail, self.during_rollout = directory, fail, during_rollout
        self.weights: list[int] = []

    def _tag(self, release_id):
        return Release.objects.select_related("version").get(pk=release_id).version.tag

    def rollout(self, *, release_id, log):
        tag = self._tag(release_id)
        (self.directory / tag).write_text("running")
        if self.during_rollout is not None:
            self.during_rollout(release_id)
        if self.fail:
            log("pods crash-looping")
            return DeployOutcome(status="failed", rollout=RolloutResult(ok=False, reason="CrashLoopBackOff",
                                                                        message="back-off restarting"))
        log(f"running {tag}")
        return DeployOutcome(status="deployed", rollout=RolloutResult(ok=True, reason="Complete", message="ok"))

    def cancel(self, *, release_id, log):
        (self.directory / self._tag(release_id)).unlink(missing_ok=True)

    def set_weight(self, *, release_id, weight, log):
        self.weights.append(weight)

    def go_live(self, **kwargs): ...

    def roll_back(self, *, release_id, log):
        (self.directory / self._tag(release_id)).unlink(missing_ok=True)


@pytest.fixture
def file_target(environments, tmp_path, eager_tasks):
    environments["staging"].deploy_target = DeployTargetKind.LOCAL
    environments["staging"].save()
    previous = drivers._DRIVERS.get(DeployTargetKind.LOCAL)

    def register(**options):
        driver = FileDriver(tmp_path, **options)
        drivers.register_driver(DeployTargetKind.LOCAL, driver)
        return driver

    yield register
    if previous is None:
        drivers._DRIVERS.pop(DeployTargetKind.LOCAL, None)
    else:
        drivers.register_driver(DeployTargetKind.LOCAL, previous)


def running(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_promotion_rolls_out_through_one_rollout_row_and_the_release_goes_live(file_target, make_release, rm,
                                                                                tmp_path):
    file_target()
    release = make_release("v5.0.0-rc1")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == S.LIVE  # nothing was live: straight to 100 %
    rollout = Rollout.objects.get(release=release)
    assert (rollout.status, rollout.attempt) == (RolloutStatus.SUCCEEDED, 1)
    assert "running v5.0.0-rc1" in rollout.log
    assert running(tmp_path) == {"v5.0.0-rc1"}
    # CI ended at ready: the pipeline has no deploy stage to wait in.
    assert not Pipeline.objects.filter(release=release, stages__name="deploy").exists()


def test_failed_rollout_fails_the_release_and_leaves_nothing_of_its_version_running(file_target, make_release, rm,
                                                                                   tmp_path):
    file_target(fail=True)
    release = make_release("v5.0.1-rc1")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == S.FAILED and "CrashLoopBackOff" in release.status_reason
    rollout = Rollout.objects.get(release=release)
    assert rollout.status == RolloutStatus.FAILED and "pods crash-looping" in rollout.log
    assert running(tmp_path) == set()


def test_rollback_while_deploying_cancels_the_rollout_and_removes_the_canary_it_made(file_target, make_release, rm,
                                                                                    ops, tmp_path):
    stable = make_release("v1.0.0")
    file_target()
    release_promote(actor=Actor.of(rm), release_id=stable.pk)
    assert running(tmp_path) == {"v1.0.0"}

    def person_rolls_back(release_id):  # the click lands while the canary is being rolled out
        release_rollback(actor=Actor.of(ops), release_id=release_id, comment="wrong build")

    file_target(during_rollout=person_rolls_back)
    canary = make_release("v1.1.0")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)

    canary.refresh_from_db()
    stable.refresh_from_db()
    assert canary.status == S.ROLLED_BACK and stable.status == S.LIVE
    assert Rollout.objects.get(release=canary).status == RolloutStatus.CANCELLED
    # The canary the rollout made after the cancel is gone too; the stable was never touched.
    assert running(tmp_path) == {"v1.0.0"}


def test_a_weight_change_older_than_the_one_applied_is_never_applied(file_target, make_release, rm):
    driver = file_target()
    release_promote(actor=Actor.of(rm), release_id=make_release("v1.0.0").pk)
    canary = make_release("v1.1.0")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)  # deploying -> gray 5 %: weight change 1
    rollout = Rollout.objects.get(release=canary)
    assert (rollout.traffic_seq, rollout.traffic_applied_seq, driver.weights) == (1, 1, [5])

    release_promote(actor=Actor.of(rm), release_id=canary.pk, expected_weight=5)  # 10 %: weight change 2
    assert driver.weights == [5, 10]
    # The task of change 1 is delivered again, late (a redelivery after a worker loss): it must not land.
    Release.objects.filter(pk=canary.pk).update(gray_weight=5)  # even when the weight matches it again
    assert deploy_set_weight.apply(args=[canary.pk, 5, 1]).get() == "stale"
    assert driver.weights == [5, 10]
    assert Rollout.objects.get(release=canary).traffic_applied_seq == 2


def test_rollout_status_writes_follow_the_rollout_transition_map(file_target, make_release, rm):
    from deploy.models import ROLLOUT_TRANSITIONS
    from releases.errors import TransitionNotAllowed

    file_target()
    release = make_release("v7.0.0")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    rollout = Rollout.objects.get(release=release)
    for from_status, allowed in ROLLOUT_TRANSITIONS.items():
        for to_status in set(RolloutStatus.values) - allowed:
            Rollout.objects.filter(pk=rollout.pk).update(status=from_status)
            with pytest.raises(TransitionNotAllowed):
                rollouts._set_status(rollout.pk, from_statuses=[from_status], to_status=to_status)
            assert Rollout.objects.get(pk=rollout.pk).status == from_status


def test_every_release_transition_that_moves_a_target_has_exactly_one_task():
    for from_status, allowed in ALLOWED_TRANSITIONS.items():
        for to_status in allowed:
            matches = [r for r in ROUTES if r.to_status == to_status and from_status in r.from_statuses]
            assert len(matches) <= 1, (from_status, to_status)
    assert route_for(S.DEPLOYING, S.ROLLED_BACK).task == "deploy.rollout_cancel"
    assert route_for(S.READY, S.DEPLOYING).task == "deploy.rollout_run"
    assert route_for(S.SUPERSEDED, S.LIVE) is None
    for route in ROUTES:
        for from_status in route.from_statuses:
            assert route.to_status in ALLOWED_TRANSITIONS[from_status], route


def test_revision_status_writes_follow_the_revision_transition_map():
    from deploy.models import REVISION_TRANSITIONS, DeployRevisionStatus
    from deploy.services import revision_mark
    from releases.errors import TransitionNotAllowed

    for from_status, allowed in REVISION_TRANSITIONS.items():
        for to_status in set(DeployRevisionStatus.values) - allowed:
            with pytest.raises(TransitionNotAllowed, match=f"{from_status} to {to_status}"):
                revision_mark(revision_id=0, from_statuses={from_status}, to_status=to_status)
