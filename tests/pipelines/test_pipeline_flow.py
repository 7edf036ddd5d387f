"""Releases through build -> scan -> push with a real Celery worker, the real Podman engine and registry."""
import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from channels.layers import get_channel_layer

from django.contrib.auth import get_user_model

from pipelines.models import ArtefactKind, Pipeline, PipelineStatus, Stage, StageStatus, WebhookEndpoint
from releases.choices import ReleaseStatus, Role
from releases.events import release_group
from releases.models import Release
from tests.conftest import client_for, make_user, sha
from tests.pipelines.conftest import wait_for
from tests.pipelines.flaky_registry import FlakyRegistryProxy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FINAL = {ReleaseStatus.READY, ReleaseStatus.CI_FAILED, ReleaseStatus.BLOCKED}


def create_release(user, service, tag="v1.0.0-rc1", env="staging") -> int:
    response = client_for(user).post("/api/releases/", {"service": service.name, "environment": env, "tag": tag,
                                                        "commit": sha()}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _override_if_waiting(release_id: int) -> None:
    """Nothing can verify the image on this offline machine (pip-audit has no data), so every scan waits for a
    release manager: one gives the override, in writing, as a person would on the release page."""
    stage = Stage.objects.filter(pipeline__release_id=release_id, name="scan", status=StageStatus.WAITING).first()
    if stage is None:
        return
    rm = get_user_model().objects.filter(username="rm-flow").first() or make_user("rm-flow", Role.RELEASE_MANAGER)
    response = client_for(rm).post(f"/api/releases/{release_id}/scan-override/",
                                   {"reason": "offline test machine: no vulnerability data to check against"},
                                   format="json")
    assert response.status_code == 202, response.content


def wait_settled(release_id: int, workers, timeout: float = 120) -> Release:
    def settled():
        _override_if_waiting(release_id)
        release = Release.objects.select_related("version").get(pk=release_id)
        return release if release.status in FINAL else None

    try:
        return wait_for(settled, timeout=timeout, what=f"release #{release_id} to finish its pipeline")
    except AssertionError:
        print(workers.logs())
        raise


def stages_of(release_id: int) -> dict:
    pipeline = Pipeline.objects.get(release_id=release_id)
    return {stage.name: stage for stage in pipeline.stages.all()}


class EventListener:
    """Joins release.<id> on the real Redis channel layer and collects events in a thread until stopped."""

    def __init__(self, release_id: int):
        self.group = release_group(release_id)
        self.events: list[dict] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    async def _listen(self):
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(self.group, channel)
        self._ready.set()
        while not self._stop.is_set():
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except asyncio.TimeoutError:
                continue
            self.events.append(message["event"])
        await layer.group_discard(self.group, channel)

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def test_release_created_through_the_api_is_built_scanned_and_pushed_by_a_real_worker(
        workers, buildable_service, registry, dev, environments):
    service = buildable_service()
    workers.start()
    release_id = create_release(dev, service)
    with EventListener(release_id) as listener:
        release = wait_settled(release_id, workers)
        wait_for(lambda: any(e.get("type") == "release.changed" and e.get("status") == "ready"
                             for e in listener.events), timeout=10, what="the release.changed event")
    assert release.status == ReleaseStatus.READY, (release.status_reason, workers.logs())

    stages = stages_of(release_id)
    for name in ("prepare", "build", "scan", "push"):
        assert stages[name].status == StageStatus.SUCCEEDED, (name, stages[name].failure_reason)
        assert stages[name].attempt == 1 and stages[name].task_id
        assert stages[name].duration_s is not None and stages[name].duration_s >= 0
    assert "deploy" not in stages  # CI ends at ready; the rollout is the deploy app's
    assert Pipeline.objects.get(release_id=release_id).status == PipelineStatus.SUCCEEDED

    # The image is in the real registry: read its manifest back without our code.
    reference = f"127.0.0.1:5000/agent/{service.name}:v1.0.0-rc1"
    assert release.version.image_reference == reference
    manifest = httpx.get(f"http://{registry}/v2/agent/{service.name}/manifests/v1.0.0-rc1", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"})
    assert manifest.status_code == 200
    assert release.version.image_digest == manifest.headers["Docker-Content-Digest"]

    # Stage events reached the channel layer, from the worker process.
    stage_events = [(e["stage"], e["status"]) for e in listener.events if e["type"] == "pipeline.stage"]
    for name in ("build", "scan", "push"):
        assert (name, "running") in stage_events and (name, "succeeded") in stage_events, stage_events
    assert any(e["type"] == "pipeline.log" and e["stage"] == "build" for e in listener.events)

    # The API shows the stages, log tails and artefacts; the HTML report is downloadable.
    body = client_for(dev).get(f"/api/releases/{release_id}/pipeline/").json()
    assert [s["name"] for s in body["stages"]] == ["prepare", "build", "scan", "push"]
    scan = body["stages"][2]
    # pip-audit is unverified here: the scan waited for a release manager, who overrode it in writing.
    assert any("scan verdict: needs_override" in line["message"] for line in scan["log_tail"])
    assert body["scan_override"]["by"] == "rm-flow" and "python_dependencies unverified" in \
        body["scan_override"]["overridden"]
    kinds = {a["kind"]: a["url"] for s in body["stages"] for a in s["artefacts"]}
    assert set(kinds) == {ArtefactKind.IMAGE_CHECK, ArtefactKind.SCAN_REPORT_JSON, ArtefactKind.SCAN_REPORT_HTML,
                          ArtefactKind.SBOM, ArtefactKind.PUSH_RESULT}
    html = client_for(dev).get(kinds[ArtefactKind.SCAN_REPORT_HTML])
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert b"Verdict: needs_override" in html.content
    report = client_for(dev).get(kinds[ArtefactKind.SCAN_REPORT_JSON]).json()
    assert report["decision"]["verdict"] == "needs_override" and report["subject"] == reference


def test_critical_finding_blocks_the_release_and_nothing_is_pushed(
        workers, buildable_service, build_context, registry, dev, environments):
    (build_context / "trivy-report.json").write_text(json.dumps({
        "SchemaVersion": 2, "ArtifactName": "agent", "Results": [{"Target": "app", "Vulnerabilities": [
            {"VulnerabilityID": "CVE-2026-0001", "PkgName": "openssl", "InstalledVersion": "1.0",
             "FixedVersion": "1.1", "Severity": "CRITICAL", "Title": "remote code execution"}]}]}))
    service = buildable_service()
    workers.start()
    release_id = create_release(dev, service)
    release = wait_settled(release_id, workers)

    assert release.status == ReleaseStatus.BLOCKED
    assert "1 critical findings" in release.status_reason
    stages = stages_of(release_id)
    assert stages["scan"].status == StageStatus.BLOCKED
    assert stages["push"].status == StageStatus.PENDING and stages["push"].attempt == 0
    assert Pipeline.objects.get(release_id=release_id).status == PipelineStatus.BLOCKED
    manifest = httpx.get(f"http://{registry}/v2/agent/{service.name}/manifests/v1.0.0-rc1")
    assert manifest.status_code == 404
    assert release.version.image_digest == ""


def test_registry_refusing_twice_then_accepting_succeeds_on_the_third_attempt(
        workers, buildable_service, registry, dev, environments):
    with FlakyRegistryProxy(upstream=registry, refuse_pushes=2) as proxy:
        service = buildable_service(registry_address=proxy.address)
        workers.start()
        release_id = create_release(dev, service)
        release = wait_settled(release_id, workers)
    assert release.status == ReleaseStatus.READY, release.status_reason
    push = stages_of(release_id)["push"]
    result = json.loads(push.artefacts.get(kind=ArtefactKind.PUSH_RESULT).content)
    assert [a["succeeded"] for a in result["attempts"]] == [False, False, True]
    assert proxy.manifest_puts == 3
    assert release.version.image_digest == result["digest"]
    messages = list(push.log_lines.values_list("message", flat=True))
    assert sum("503 Service Unavailable" in m and "failed" in m for m in messages) == 2


class WebhookReceiver:
    def __init__(self):
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"path": self.path, "body": json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_refused_push_fails_the_stage_notifies_and_retry_resumes_from_the_push(
        workers, buildable_service, registry, dev, environments):
    secret = "tok-9f8e7d6c5b4a"
    with FlakyRegistryProxy(upstream=registry, refuse_pushes=3) as proxy, WebhookReceiver() as hooks:
        WebhookEndpoint.objects.create(name="team-chat", url=f"{hooks.url}/hook?access_token={secret}")
        service = buildable_service(registry_address=proxy.address)
        workers.start()
        release_id = create_release(dev, service)
        release = wait_settled(release_id, workers)

        assert release.status == ReleaseStatus.CI_FAILED
        stages = stages_of(release_id)
        push = stages["push"]
        assert push.status == StageStatus.FAILED
        assert "failed after 3 attempts" in push.failure_reason and "503 Service Unavailable" in push.failure_reason
        pipeline = Pipeline.objects.get(release_id=release_id)
        assert pipeline.status == PipelineStatus.FAILED and pipeline.labels == ["ci_failed"]

        wait_for(lambda: hooks.received, timeout=30, what="the failure notification")
        payload = hooks.received[0]["body"]
        assert payload["event"] == "pipeline.stage_failed" and payload["stage"] == "push"
        assert payload["service"] == service.name and "failed after 3 attempts" in payload["reason"]
        assert payload["labels"] == ["ci_failed"]
        wait_for(lambda: push.log_lines.filter(message__contains="notification to webhook 'team-chat'").exists(),
                 timeout=10, what="the delivery to be logged")
        assert not push.log_lines.filter(message__contains=secret).exists()
        body = client_for(dev).get(f"/api/releases/{release_id}/pipeline/").content.decode()
        assert secret not in body

        # The registry accepts now; the retry runs the push again and nothing before it.
        response = client_for(dev).post(f"/api/releases/{release_id}/pipeline/retry/")
        assert response.status_code == 202, response.content
        release = wait_settled(release_id, workers)
    assert release.status == ReleaseStatus.READY, release.status_reason
    stages = stages_of(release_id)
    assert stages["push"].status == StageStatus.SUCCEEDED and stages["push"].attempt == 2
    assert stages["build"].attempt == 1 and stages["scan"].attempt == 1
    assert Pipeline.objects.get(release_id=release_id).labels == []
    assert proxy.manifest_puts == 4
