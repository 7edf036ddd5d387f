"""Build once (issue 15): a version is built, scanned and pushed once; a release of the same version to another
environment proves the digest is still in the registry, skips build and push, and re-judges the same scan."""
import json

import httpx
import pytest
from django.test import Client

from pipelines.models import ArtefactKind, Pipeline, PipelineStatus, StageStatus
from releases.choices import ReleaseStatus
from releases.models import Release, Version
from tests.conftest import client_for, sha
from tests.pipelines.test_pipeline_flow import stages_of, wait_settled

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def start(user, service, env: str, tag: str, commit: str) -> int:
    response = client_for(user).post("/api/releases/", {"service": service.name, "environment": env, "tag": tag,
                                                        "commit": commit}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_release_of_the_same_version_to_another_environment_reuses_the_pushed_digest(
        workers, buildable_service, registry, dev, environments):
    service = buildable_service()
    workers.start()
    commit = sha()
    built_id = start(dev, service, "test", "v4.2.0-rc1", commit)
    built = wait_settled(built_id, workers)
    assert built.status == ReleaseStatus.READY, built.status_reason
    digest = built.version.image_digest
    assert digest.startswith("sha256:")

    reused_id = start(dev, service, "staging", "v4.2.0-rc1", commit)
    reused = wait_settled(reused_id, workers)
    assert reused.status == ReleaseStatus.READY, reused.status_reason
    assert reused.version_id == built.version_id and Version.objects.get(pk=reused.version_id).image_digest == digest
    stages = stages_of(reused_id)
    assert stages["prepare"].status == StageStatus.SUCCEEDED
    assert stages["build"].status == StageStatus.SKIPPED and stages["push"].status == StageStatus.SKIPPED
    assert f"image reused from release #{built_id}, digest {digest}" in stages["build"].failure_reason
    prepare_log = " ".join(stages["prepare"].log_lines.values_list("message", flat=True))
    assert "read back from the registry: still there" in prepare_log
    # The scan result travelled with the digest: the same checks, judged again for staging (unverified here, so
    # it waited for an override again), and the report names the staging environment.
    report = json.loads(stages["scan"].artefacts.get(kind=ArtefactKind.SCAN_REPORT_JSON).content)
    built_report = json.loads(stages_of(built_id)["scan"].artefacts.get(kind=ArtefactKind.SCAN_REPORT_JSON).content)
    assert [c["name"] for c in report["checks"]] == [c["name"] for c in built_report["checks"]]
    assert report["decision"]["environment"] == "staging" and built_report["decision"]["environment"] == "test"
    pipeline = Pipeline.objects.get(release_id=reused_id)
    assert pipeline.reused_from.release_id == built_id and pipeline.status == PipelineStatus.SUCCEEDED
    body = client_for(dev).get(f"/api/releases/{reused_id}/pipeline/").json()
    assert body["reused_from"] == {"release_id": built_id, "pipeline_id": pipeline.reused_from_id, "digest": digest}
    page = Client()
    page.force_login(dev)
    html = page.get(f"/releases/{reused_id}/pipeline/").content.decode()
    assert f"release #{built_id}</a>, digest <code>{digest}</code>" in html
    assert digest == httpx.get(  # the registry still serves what was built once
        f"http://{registry}/v2/agent/{service.name}/manifests/v4.2.0-rc1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json,"
                           "application/vnd.docker.distribution.manifest.v2+json"}).headers["Docker-Content-Digest"]


def test_an_image_no_longer_in_the_registry_is_built_again(workers, buildable_service, registry, dev, environments):
    service = buildable_service()
    workers.start()
    commit = sha()
    built = wait_settled(start(dev, service, "dev", "v4.3.0", commit), workers)
    assert built.status == ReleaseStatus.READY, built.status_reason
    # The tag was moved in the registry behind Rollgate's back: the recorded digest is not what it serves.
    Version.objects.filter(pk=built.version_id).update(image_digest="sha256:" + "0" * 64)
    again_id = start(dev, service, "test", "v4.3.0", commit)
    again = wait_settled(again_id, workers)
    assert again.status == ReleaseStatus.READY, again.status_reason
    stages = stages_of(again_id)
    assert stages["build"].status == StageStatus.SUCCEEDED and stages["push"].status == StageStatus.SUCCEEDED
    assert Pipeline.objects.get(release_id=again_id).reused_from is None
    assert "building the image again" in " ".join(stages["prepare"].log_lines.values_list("message", flat=True))
    assert Release.objects.get(pk=again_id).version.image_digest == built.version.image_digest
