"""Fixtures for the build/push integration tests: the real Podman service and registry.

`scripts/setup-pipelines.sh` starts both; these fixtures only check they answer and
print why when they do not, instead of failing every test with a connection error.
"""

import os
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from pipelines.integrations.docker_build import docker_client, image_reference, image_remove

REGISTRY = os.environ.get("ROLLGATE_TEST_REGISTRY", "127.0.0.1:5000")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="session")
def engine():
    client = docker_client(timeout_s=300)
    try:
        client.ping()
    except Exception as exc:  # any failure here means the service is not there
        pytest.fail(f"no Docker-compatible engine at DOCKER_HOST: {exc}; "
                    "run scripts/setup-pipelines.sh first")
    yield client
    # Multi-stage builds leave their untagged intermediate stages behind.
    client.images.prune(filters={"dangling": True})
    client.close()


@pytest.fixture(scope="session")
def registry():
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"no registry at {REGISTRY}: {exc}; run scripts/setup-pipelines.sh first")
    return REGISTRY


@pytest.fixture
def build_context(tmp_path):
    """A copy of the fixture agent service with a static busybox added (not committed)."""
    if not BUSYBOX.is_file():
        pytest.fail("a static /bin/busybox is needed (Debian package busybox-static)")
    context = tmp_path / "agent_service"
    shutil.copytree(FIXTURES / "agent_service", context)
    shutil.copy2(BUSYBOX, context / "busybox")
    return context


@pytest.fixture
def unique_reference(engine, registry):
    """A fresh image name per test, removed from the engine afterwards."""
    created = []

    def make(service="agent-fixture", tag=None, registry_address=None):
        ref = image_reference(registry=registry_address or registry, path="rollgate-tests",
                              service=service, tag=tag or f"t-{uuid.uuid4().hex[:10]}")
        created.append(ref)
        return ref

    yield make
    for ref in created:
        image_remove(reference=ref, client=engine)
