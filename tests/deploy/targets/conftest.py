"""Fixtures: a fake Kubernetes API server per test, a stage log, and a target that talks to it."""

from __future__ import annotations

import pytest

from deploy.targets.k8s_credentials import KubernetesCredentials
from deploy.targets.kubernetes import KubernetesTarget, KubernetesTargetSettings
from deploy.targets.manifests import render_revision
from deploy.targets.values import merge_values
from tests.deploy.fake_k8s import FakeKubernetes

TOKEN = "sa-token-7f3b9c2e5d1a4b8f9e0c6d2a1b3c4d5e"

BASE_VALUES = {
    "replicaCount": 2,
    "image": {"repository": "registry.example.com/agent/agent-core", "tag": "latest"},
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    "env": [{"name": "AGENT_ENV", "value": "dev"}],
    "service": {"type": "ClusterIP", "port": 8080},
    "configMap": {"data": {"MODEL_ENDPOINT": "http://model.dev:9000"}},
}
STAGING_VALUES = {
    "replicaCount": 4,
    "env": [{"name": "AGENT_ENV", "value": "staging"}, {"name": "LOG_LEVEL", "value": "debug"}],
    "nodeSelector": {"pool": "agents"},
    "resourceQuota": {"requests.cpu": "8", "limits.memory": "16Gi", "pods": "40"},
}


@pytest.fixture
def make_cluster():
    started: list[FakeKubernetes] = []

    def make(*, istio: bool = True) -> FakeKubernetes:
        fake = FakeKubernetes(token=TOKEN, istio=istio).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def cluster(make_cluster) -> FakeKubernetes:
    return make_cluster(istio=True)


@pytest.fixture
def stage_log() -> list[str]:
    return []


def settings(**overrides) -> KubernetesTargetSettings:
    base = dict(allow_namespace_create=True, poll_interval_seconds=0.02, rollout_timeout_seconds=5,
                idle_scale_down_delay_seconds=120, log_tail_lines=5, probe_failure_threshold=3)
    base.update(overrides)
    return KubernetesTargetSettings(**base)


@pytest.fixture
def make_target(stage_log):
    targets: list[KubernetesTarget] = []

    def make(fake: FakeKubernetes, **overrides) -> KubernetesTarget:
        target = KubernetesTarget(KubernetesCredentials.from_token(fake.host, TOKEN), log=stage_log.append,
                                  settings=settings(**overrides))
        targets.append(target)
        return target

    yield make
    for target in targets:
        target.close()


@pytest.fixture
def target(cluster, make_target) -> KubernetesTarget:
    return make_target(cluster)


def revision_for(tag: str, *, env: str = "staging", overlay: dict | None = None, service: str = "agent-core", **kwargs):
    values = merge_values(BASE_VALUES, STAGING_VALUES if overlay is None else overlay, image_tag=tag,
                          overlay_source=f"values-{env}.yaml")
    return render_revision(service, env, values, progress_deadline_seconds=kwargs.pop("progress_deadline_seconds", 20), **kwargs)
