"""The fake-server scenarios, against a real cluster. Opt-in: set KUBECONFIG and ROLLGATE_REAL_CLUSTER=1.

Each run works in its own namespace ``agent-rgtest-<random>`` and deletes it afterwards. The
workload is an unprivileged nginx listening on 8080 (override with ROLLGATE_REAL_CLUSTER_IMAGE,
ROLLGATE_REAL_CLUSTER_TAGS="good1,good2"); a tag that does not exist plays the failing release.
"""

from __future__ import annotations

import os
import secrets

import pytest

from deploy.targets.base import Revision, deploy_revision
from deploy.targets.k8s_credentials import KubernetesCredentials
from deploy.targets.kubernetes import KubernetesTarget, KubernetesTargetSettings
from deploy.targets.manifests import namespace_for, render_revision
from deploy.targets.values import merge_values

_missing = [name for name, wanted in (("KUBECONFIG", None), ("ROLLGATE_REAL_CLUSTER", "1"))
            if not os.environ.get(name) or (wanted and os.environ.get(name) != wanted)]
if _missing:
    reason = f"real-cluster scenarios are opt-in: set {' and '.join(n if n == 'KUBECONFIG' else n + '=1' for n in _missing)}"
    print(f"\n{__name__}: skipped: {reason}")
    pytest.skip(reason, allow_module_level=True)

IMAGE = os.environ.get("ROLLGATE_REAL_CLUSTER_IMAGE", "docker.io/nginxinc/nginx-unprivileged")
GOOD_TAGS = os.environ.get("ROLLGATE_REAL_CLUSTER_TAGS", "1.25-alpine,1.27-alpine").split(",")
MISSING_TAG = "rollgate-does-not-exist-0"
BASE = {
    "replicaCount": 2,
    "image": {"repository": IMAGE, "tag": GOOD_TAGS[0]},
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
    "service": {"type": "ClusterIP", "port": 8080},
    "configMap": {"data": {"GREETING": "hello"}},
}


@pytest.fixture(scope="module")
def env():
    return f"rgtest-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def stage_log():
    return []


@pytest.fixture(scope="module")
def target(env, stage_log):
    credentials = KubernetesCredentials.from_kubeconfig(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    settings = KubernetesTargetSettings(allow_namespace_create=True, poll_interval_seconds=1,
                                        rollout_timeout_seconds=180, idle_scale_down_delay_seconds=0)
    target = KubernetesTarget(credentials, log=stage_log.append, settings=settings)
    yield target
    target._api.core.delete_namespace(namespace_for(env))
    target.close()


def revision(env, tag, **kwargs) -> Revision:
    values = merge_values(BASE, kwargs.pop("overlay", {}), image_tag=tag)
    return render_revision("rollgate-probe", env, values, progress_deadline_seconds=60, **kwargs)


def test_deploy_is_idempotent_and_rolls_out(target, env):
    first = revision(env, GOOD_TAGS[0])
    target.apply(first)
    assert target.watch_rollout(first).ok
    assert not target.apply(first).changed


def test_failing_release_rolls_back_automatically(target, env, stage_log):
    good = revision(env, GOOD_TAGS[0])
    outcome = deploy_revision(target, revision(env, MISSING_TAG), last_good=good, auto_rollback=True, log=stage_log.append)
    assert outcome.status == "rolled_back"
    assert outcome.rollout.reason in ("ImagePullBackOff", "ProgressDeadlineExceeded")


def test_rollback_to_a_chosen_revision(target, env):
    history = []
    for tag in GOOD_TAGS:
        rev = revision(env, tag)
        target.apply(rev)
        assert target.watch_rollout(rev).ok
        history.append(rev.to_json())
    chosen = Revision.from_json(history[0])
    target.apply(chosen)
    assert target.watch_rollout(chosen).ok


def test_gray_traffic_split(target, env):
    canary = revision(env, GOOD_TAGS[1], track="canary", overlay={"replicaCount": 1})
    target.apply(canary)
    assert target.watch_rollout(canary).ok
    result = target.set_traffic("rollgate-probe", env, stable_tag=GOOD_TAGS[0], canary_tag=GOOD_TAGS[1],
                                weight=50, header_match={"x-gray-tag": "gray-phase-A"})
    assert result.effective_weight == 50.0


def test_blue_green_switch_and_back(target, env):
    for colour, tag in (("blue", GOOD_TAGS[0]), ("green", GOOD_TAGS[1])):
        rev = revision(env, tag, colour=colour)
        target.apply(rev)
        assert target.watch_rollout(rev).ok
    # Service "rollgate-probe" already exists (earlier tests): applying a colour keeps its selector.
    assert target.switch_blue_green("rollgate-probe", env, to_colour="green").active == "green"
    assert target.switch_blue_green("rollgate-probe", env, to_colour="blue").active == "blue"
    assert target.scale_down_idle("rollgate-probe", env).colour == "green"
