"""The traffic tasks through a real Celery worker process (Redis broker): a blue-green go-live switches the
Service, and the idle colour is scaled down only after the configured delay (a task queued with a countdown)."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from config.celery_app import app as celery_app
from deploy.targets.manifests import COLOUR_LABEL
from releases.choices import ReleaseStatus
from releases.models import Release
from releases.services import Actor, release_promote
from tests.conftest import app_database_url
from tests.deploy.conftest import NS, kube_environment

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]
DELAY = 2.0


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def worker():
    """A Celery worker on this test's database and Redis db; stopped (and waited for) afterwards."""
    celery_app.control.purge()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "PYTHONPATH": str(ROOT),
           "DATABASE_URL": app_database_url(),
           "REDIS_URL": settings.REDIS_URL}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", "celery,gate", "--pool=solo", "--concurrency=1",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO", "-n", "deploy-test@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield process
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print(output[-4000:])


def test_blue_green_go_live_in_a_worker_scales_the_idle_colour_down_after_the_delay(
        environments, cluster, ops, service, make_release, rm, stage_log, worker):
    staging = kube_environment(environments["staging"], cluster, ops, strategy="blue_green",
                               idle_scale_down_delay_seconds=DELAY)
    first = make_release("v1.0.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=first.pk)  # the worker runs the rollout (deploy.rollout_run)
    wait_for(lambda: Release.objects.get(pk=first.pk).status == ReleaseStatus.LIVE, 30, "the first rollout")
    second = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=second.pk, full=True)

    selector = lambda: cluster.get("services", NS, "agent-infer")["spec"]["selector"].get(COLOUR_LABEL)  # noqa: E731
    blue_replicas = lambda: cluster.get("deployments", NS, "agent-infer-blue")["spec"]["replicas"]  # noqa: E731
    wait_for(lambda: selector() == "green", 30, "the worker's go_live task to switch the Service to green")
    switched_at = time.monotonic()
    assert blue_replicas() == 1  # still warm for a quick switch back
    wait_for(lambda: blue_replicas() == 0, 30, "the delayed idle scale-down")
    assert time.monotonic() - switched_at >= DELAY - 0.5
    second.refresh_from_db()
    assert second.status == ReleaseStatus.LIVE and staging.deploy_target == "kubernetes"
