"""Pipeline API: summary, logs, artefacts, retry, scan override, webhook endpoints; the release page section."""
import pytest

from pipelines import services
from pipelines.models import ArtefactKind, Pipeline, PipelineStatus, Stage, StageStatus, WebhookEndpoint
from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline(make_release):
    release = make_release("v3.1.0-rc1", status=ReleaseStatus.PENDING)
    return services.pipeline_start(release_id=release.pk)


def run_to(pipeline, name):
    """Claim the stages up to `name` the way a worker would; returns the claimed stage `name`."""
    for stage in pipeline.stages.order_by("position"):
        claimed = services.stage_claim(stage_id=stage.pk, task_id=f"task-{stage.name}")
        if stage.name == name:
            return claimed
        assert services.stage_succeed(stage_id=stage.pk, attempt=claimed.attempt)


def test_pipeline_summary_lists_stages_with_log_tail_and_artefacts(pipeline, dev, nobody):
    build = run_to(pipeline, "build")
    services.stage_log_append(stage_id=build.pk, message="Step 1/3 : FROM scratch")
    artefact = services.artefact_store(stage_id=build.pk, kind=ArtefactKind.IMAGE_CHECK, content='{"passed": true}')
    body = client_for(dev).get(f"/api/releases/{pipeline.release_id}/pipeline/").json()
    assert body["status"] == "running"
    stages = {s["name"]: s for s in body["stages"]}
    assert stages["prepare"]["status"] == "succeeded" and stages["prepare"]["duration_s"] is not None
    assert stages["build"]["status"] == "running" and stages["build"]["attempt"] == 1
    assert stages["build"]["log_tail"][-1]["message"] == "Step 1/3 : FROM scratch"
    assert stages["build"]["artefacts"][0]["url"] == f"/api/pipelines/{pipeline.pk}/artefacts/{artefact.pk}/"
    download = client_for(dev).get(stages["build"]["artefacts"][0]["url"])
    assert download.status_code == 200 and download.json() == {"passed": True}
    log = client_for(dev).get(f"/api/pipelines/{pipeline.pk}/stages/build/log/?after=0").json()
    assert [line["message"] for line in log["lines"]][-1] == "Step 1/3 : FROM scratch"
    assert client_for(nobody).get(f"/api/releases/{pipeline.release_id}/pipeline/").status_code == 403
    assert client_for(dev).get(f"/api/pipelines/{pipeline.pk}/stages/nope/log/").status_code == 404
    assert client_for(dev).get(f"/api/pipelines/{pipeline.pk}/artefacts/999999/").status_code == 404


def test_failed_pipeline_is_retried_from_the_failed_stage_by_a_developer(pipeline, dev, qa):
    scan = run_to(pipeline, "scan")
    assert services.stage_fail(stage_id=scan.pk, attempt=scan.attempt, reason="hadolint crashed")
    assert Release.objects.get(pk=pipeline.release_id).status == ReleaseStatus.CI_FAILED
    assert client_for(qa).post(f"/api/releases/{pipeline.release_id}/pipeline/retry/").status_code == 403

    response = client_for(dev).post(f"/api/releases/{pipeline.release_id}/pipeline/retry/")
    assert response.status_code == 202, response.content
    stages = {s.name: s for s in Pipeline.objects.get(pk=pipeline.pk).stages.all()}
    assert stages["scan"].status == StageStatus.PENDING and stages["scan"].failure_reason == ""
    assert stages["build"].status == StageStatus.SUCCEEDED  # kept, not rebuilt
    assert stages["scan"].log_lines.filter(message__contains="stage failed: hadolint crashed").exists()  # log kept
    assert Pipeline.objects.get(pk=pipeline.pk).labels == []
    assert Release.objects.get(pk=pipeline.release_id).status == ReleaseStatus.BUILDING
    retry = AuditEvent.objects.get(action="pipeline.retry")  # one row, naming the person
    assert (retry.actor.username, retry.from_state, retry.to_state) == ("dev", "ci_failed", "building")
    again = client_for(dev).post(f"/api/releases/{pipeline.release_id}/pipeline/retry/")
    assert again.status_code == 409 and "only a failed pipeline" in again.json()["detail"]


def test_high_findings_wait_for_a_release_manager_override_with_a_reason(pipeline, dev, rm):
    scan = run_to(pipeline, "scan")
    assert services.stage_wait_for_override(stage_id=scan.pk, attempt=scan.attempt, reason="2 high findings")
    url = f"/api/releases/{pipeline.release_id}/scan-override/"
    assert client_for(dev).post(url, {"reason": "accepted risk, fix next sprint"}, format="json").status_code == 403
    short = client_for(rm).post(url, {"reason": "ok"}, format="json")
    assert short.status_code == 400 and "reason" in short.json()["errors"]

    response = client_for(rm).post(url, {"reason": "accepted risk: not reachable, fix in v3.1.1"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["scan_override"] == {"by": "rm", "reason": "accepted risk: not reachable, fix in v3.1.1",
                                                "overridden": "2 high findings"}
    assert Stage.objects.get(pk=scan.pk).status == StageStatus.SUCCEEDED
    assert Pipeline.objects.get(pk=pipeline.pk).status == PipelineStatus.RUNNING
    assert AuditEvent.objects.filter(action="scan.override", actor_name="rm").exists()
    twice = client_for(rm).post(url, {"reason": "accepted risk: not reachable, fix in v3.1.1"}, format="json")
    assert twice.status_code == 409 and "nothing to override" in twice.json()["detail"]


def test_webhook_endpoints_are_managed_by_ops_and_their_urls_never_shown(ops, dev):
    secret_url = "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789"
    created = client_for(ops).post("/api/webhook-endpoints/", {"name": "ding", "url": secret_url,
                                                               "format": "dingtalk", "signing_secret": "SECxyz"},
                                   format="json")
    assert created.status_code == 201, created.content
    assert created.json()["url"] == "https://oapi.dingtalk.com/…"
    assert created.json()["signing_secret_set"] is True
    listing = client_for(ops).get("/api/webhook-endpoints/")
    assert "abcdef0123456789" not in listing.content.decode() and "SECxyz" not in listing.content.decode()
    audit = AuditEvent.objects.get(action="webhook.create")
    assert "abcdef0123456789" not in str(audit.details)
    endpoint_id = created.json()["id"]
    patched = client_for(ops).patch(f"/api/webhook-endpoints/{endpoint_id}/", {"enabled": False}, format="json")
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert client_for(ops).patch(f"/api/webhook-endpoints/{endpoint_id}/", {"format": "teams"},
                                 format="json").status_code == 400
    assert client_for(dev).get("/api/webhook-endpoints/").status_code == 403
    assert client_for(ops).delete(f"/api/webhook-endpoints/{endpoint_id}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_release_page_shows_the_pipeline_section_with_stages_and_log(pipeline, dev, client):
    build = run_to(pipeline, "build")
    services.stage_log_append(stage_id=build.pk, message="COPY app/ /app/")
    client.force_login(dev)
    page = client.get(f"/releases/{pipeline.release_id}/").content.decode()
    assert f'hx-get="/releases/{pipeline.release_id}/pipeline/"' in page
    section = client.get(f"/releases/{pipeline.release_id}/pipeline/").content.decode()
    assert 'hx-trigger="live:pipeline from:body' in section
    assert 'data-stage="build"' in section and "COPY app/ /app/" in section
    assert "retry from the failed stage" not in section  # nothing failed


def test_a_redelivered_failure_notification_is_posted_once(pipeline, ops):
    import http.server
    import threading

    posts = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        WebhookEndpoint.objects.create(name="hook", url=f"http://127.0.0.1:{server.server_port}/hook",
                                       format="generic", enabled=True)
        scan = run_to(pipeline, "scan")
        assert services.stage_fail(stage_id=scan.pk, attempt=scan.attempt, reason="hadolint crashed")
        first = services.stage_failure_notify(stage_id=scan.pk)
        again = services.stage_failure_notify(stage_id=scan.pk)  # the task delivered a second time
        assert [d.delivered for d in first] == [True] and again == [] and len(posts) == 1
    finally:
        server.shutdown()


@pytest.mark.parametrize("env,tag", [("prod", "v3.2.0"), ("dev", "v3.2.1"), ("staging", "v3.2.2-rc4")])
def test_unverified_scan_waits_for_an_audited_override_in_every_environment(make_release, rm, dev, env, tag, client):
    release = make_release(tag, env=env, status=ReleaseStatus.PENDING)
    pipeline = services.pipeline_start(release_id=release.pk)
    scan = run_to(pipeline, "scan")
    why = "python_dependencies unverified: skipped 3 of 3 packages (vulnerability data unreachable)"
    assert services.stage_wait_for_override(stage_id=scan.pk, attempt=scan.attempt, reason=why)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.BUILDING  # waiting, not ended
    client.force_login(rm)
    page = client.get(f"/releases/{release.pk}/pipeline/").content.decode()
    assert "waits for a release manager" in page and 'data-action="scan-override"' in page

    response = client_for(rm).post(f"/api/releases/{release.pk}/scan-override/",
                                   {"reason": "offline demo machine: no vulnerability data, image from our base"},
                                   format="json")
    assert response.status_code == 202, response.content
    assert response.json()["scan_override"]["overridden"] == why
    event = AuditEvent.objects.get(action="scan.override", release=release)
    assert event.details["overridden"] == why and event.reason.startswith("offline demo machine")
    page = client.get(f"/releases/{release.pk}/pipeline/").content.decode()
    assert "data-scan-override" in page and "offline demo machine" in page
