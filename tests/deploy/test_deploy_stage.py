"""The deploy stage: ready -> deploying runs the environment's target driver, then release_rollout_finished.

The driver here is a small real plugin registered for the "local" kind: it writes the rolled-out image into a file
and checks that file's directory exists (standing in for a cluster). The stage itself runs through the same code
the Celery task runs (pipelines.execution.stage_execute), in this process, so the plugin is registered where it
executes.
"""
from pathlib import Path

import pytest

from deploy import drivers as deploying
from pipelines import execution
from pipelines.models import Pipeline, PipelineStatus, StageStatus
from deploy.targets.base import DeployOutcome, RolloutResult
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import Release
from releases.services import Actor, release_promote

pytestmark = pytest.mark.django_db(transaction=True)


class FileDriver:
    def __init__(self, directory: Path, fail: bool = False):
        self.directory, self.fail = directory, fail

    def rollout(self, *, release_id, log):
        release = Release.objects.select_related("version").get(pk=release_id)
        if self.fail:
            log("pods crash-looping")
            return DeployOutcome(status="failed", rollout=RolloutResult(ok=False, reason="CrashLoopBackOff",
                                                                        message="back-off restarting"),
                                 notes=["CrashLoopBackOff"])
        (self.directory / f"release-{release_id}").write_text(release.version.image_reference)
        log(f"running {release.version.image_reference}")
        return DeployOutcome(status="deployed", rollout=RolloutResult(ok=True, reason="Complete", message="ok"))

    def set_weight(self, **kwargs): ...

    def go_live(self, **kwargs): ...

    def roll_back(self, **kwargs): ...


@pytest.fixture
def local_target(environments, tmp_path):
    environments["staging"].deploy_target = DeployTargetKind.LOCAL
    environments["staging"].save()
    previous = deploying._DRIVERS.get(DeployTargetKind.LOCAL)

    def register(fail=False):
        deploying.register_driver(DeployTargetKind.LOCAL, FileDriver(tmp_path, fail=fail))
        return tmp_path

    yield register
    if previous is None:
        deploying._DRIVERS.pop(DeployTargetKind.LOCAL, None)
    else:
        deploying.register_driver(DeployTargetKind.LOCAL, previous)


def promote_and_run_deploy(release, rm):
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    assert Release.objects.get(pk=release.pk).status == ReleaseStatus.DEPLOYING
    pipeline = Pipeline.objects.get(release=release)  # created on commit by the release_transitioned receiver
    deploy = pipeline.stages.get(name="deploy")
    assert deploy.status == StageStatus.PENDING
    return execution.stage_execute(stage_id=deploy.pk, task_id="deploy-task")


def test_promotion_runs_the_deploy_stage_and_the_release_goes_live(local_target, make_release, rm, workers):
    directory = local_target()
    release = make_release("v5.0.0-rc1")
    assert promote_and_run_deploy(release, rm).outcome == "succeeded"
    release.refresh_from_db()
    assert release.status == ReleaseStatus.LIVE  # nothing was live: straight to 100 %
    assert (directory / f"release-{release.pk}").read_text() == release.version.image_reference
    pipeline = Pipeline.objects.get(release=release)
    assert pipeline.status == PipelineStatus.SUCCEEDED
    stages = {s.name: s.status for s in pipeline.stages.all()}
    assert stages == {"prepare": "skipped", "build": "skipped", "scan": "skipped", "push": "skipped",
                      "deploy": "succeeded"}


def test_failed_rollout_fails_the_stage_and_the_release(local_target, make_release, rm, workers):
    local_target(fail=True)
    release = make_release("v5.0.1-rc1")
    result = promote_and_run_deploy(release, rm)
    assert result.outcome == "failed" and "CrashLoopBackOff" in result.reason
    release.refresh_from_db()
    assert release.status == ReleaseStatus.FAILED and "CrashLoopBackOff" in release.status_reason
    deploy = Pipeline.objects.get(release=release).stages.get(name="deploy")
    assert deploy.status == StageStatus.FAILED and deploy.log_lines.filter(message="pods crash-looping").exists()
