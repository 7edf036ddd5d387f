"""Fixtures for the deploy app: a kubernetes environment wired to the fake API server, values, the Celery app in
eager mode (tasks run in-process, through their real code, queued by the real receivers), and a promote helper.

Nothing is disconnected: a promotion reaches the target through deploy.receivers -> deploy.rollout_run, the one
rollout path.
"""
import pytest
import yaml

from config.celery_app import app as celery_app
from deploy import services as deploy_services
from deploy.models import Rollout
from releases.choices import DeployTargetKind
from releases.services import Actor, release_promote
from tests.deploy.targets.conftest import BASE_VALUES, STAGING_VALUES, TOKEN, cluster, make_cluster  # noqa: F401
from tests.pipelines.conftest import workers  # noqa: F401 (fixture)

NS = "agent-staging"
FAST_TARGET = {"allow_namespace_create": True, "poll_interval_seconds": 0.02, "rollout_timeout_seconds": 5,
               "idle_scale_down_delay_seconds": 0, "log_tail_lines": 5, "probe_failure_threshold": 3,
               "progress_deadline_seconds": 20}


@pytest.fixture
def eager_tasks():
    """Run queued Celery tasks in-process when they are queued (after commit), exceptions propagating."""
    before = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = before


@pytest.fixture
def stage_log() -> list[str]:
    return []


def kube_environment(env, fake, ops, **target_settings):
    env.deploy_target = DeployTargetKind.KUBERNETES
    env.target_settings = {**FAST_TARGET, **target_settings}
    env.save(update_fields=["deploy_target", "target_settings"])
    deploy_services.credential_set(actor=Actor.of(ops), environment=env.name, kind="token", host=fake.host,
                                   token=TOKEN)
    return env


@pytest.fixture
def staging(environments, cluster, ops, service, eager_tasks):  # noqa: F811
    """staging deploys to the fake cluster with agent-infer's values (base + values-staging.yaml)."""
    env = kube_environment(environments["staging"], cluster, ops)
    deploy_services.values_update(actor=Actor.of(ops), service=service.name, text=yaml.safe_dump(BASE_VALUES),
                                  comment="initial values")
    deploy_services.values_update(actor=Actor.of(ops), service=service.name, environment="staging",
                                  text=yaml.safe_dump(STAGING_VALUES), comment="staging sizing")
    return env


def promote_and_deploy(release, actor, log, **promote):
    """Promote a ready release (-> deploying); with eager tasks its rollout runs on commit, through the receiver
    table and the deploy.rollout_run task. Returns the Rollout's status; its log lines are added to ``log``."""
    release_promote(actor=Actor.of(actor), release_id=release.pk, **promote)
    release.refresh_from_db()
    rollout = Rollout.objects.filter(release=release).first()
    if rollout is None:
        return None
    log.extend(rollout.log.splitlines())
    return rollout.status
