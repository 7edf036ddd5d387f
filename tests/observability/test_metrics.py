"""GET /metrics: Rollgate's own work as Prometheus sees it (releases, promotions and rollbacks by cause, stage
durations, queue lag, gate evaluations, breach to stable, live sockets), and who may scrape it."""
import asyncio
from datetime import timedelta

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.services import alert_receive
from deploy.models import Rollout, RolloutStatus
from frontend.consumers import LiveEventsConsumer
from observability.hooks import traffic_back_on_stable
from pipelines.models import Pipeline, Stage
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import Environment, Release
from releases.services import Actor, release_pause, release_promote, release_rollback
from sla import services as sla_services
from tests.observability.conftest import scrape, value


@pytest.fixture
def three_canaries(live_release, make_release, rm, ops):
    """staging: v1.0.0 live; v1.1.0 promoted twice by rm then rolled back by alertmanager; v1.2.0 paused by rm;
    plus one rolled back by ops (a person)."""
    first = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=first.pk)
    release_promote(actor=Actor.of(rm), release_id=first.pk, expected_weight=5)
    release_rollback(actor=Actor.system("alertmanager"), release_id=first.pk, comment="errors", canary_only=True)
    second = make_release("v1.2.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=second.pk)
    release_rollback(actor=Actor.of(ops), release_id=second.pk, comment="looks wrong")
    third = make_release("v1.3.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=third.pk)
    release_pause(actor=Actor.of(rm), release_id=third.pk)
    return first, second, third


@pytest.mark.django_db
def test_releases_promotions_and_rollbacks_by_cause(three_canaries):
    samples = scrape()
    assert value(samples, "rollgate_releases", status="rolled_back", environment="staging") == 2
    assert value(samples, "rollgate_releases", status="paused", environment="staging") == 1
    assert value(samples, "rollgate_releases", status="live", environment="staging") == 1
    # live_release's promote + 2 rungs of v1.1.0 + first rung of v1.2.0 and v1.3.0, all by rm
    assert value(samples, "rollgate_promotions_total", environment="staging", cause="person") == 5
    assert value(samples, "rollgate_rollbacks_total", environment="staging", cause="alertmanager") == 1
    assert value(samples, "rollgate_rollbacks_total", environment="staging", cause="person") == 1


@pytest.mark.django_db
def test_pipeline_stage_durations_are_a_histogram(make_release):
    now = timezone.now()
    for index, (name, seconds, status) in enumerate((("build", 3, "succeeded"), ("build", 40, "succeeded"),
                                                     ("build", 700, "failed"), ("scan", 12.5, "succeeded"))):
        release = make_release(f"v2.0.{index}", "dev", status=ReleaseStatus.PENDING)
        pipeline = Pipeline.objects.filter(release=release).first() or Pipeline.objects.create(release=release)
        Stage.objects.filter(pipeline=pipeline).delete()
        Stage.objects.create(pipeline=pipeline, name=name, position=1, status=status,
                             started_at=now - timedelta(seconds=seconds), finished_at=now)
    samples = scrape()
    bucket = "rollgate_pipeline_stage_duration_seconds_bucket"
    assert value(samples, bucket, stage="build", status="succeeded", le="5.0") == 1
    assert value(samples, bucket, stage="build", status="succeeded", le="60.0") == 2
    assert value(samples, bucket, stage="build", status="failed", le="600.0") == 0
    assert value(samples, bucket, stage="build", status="failed", le="1200.0") == 1
    assert value(samples, "rollgate_pipeline_stage_duration_seconds_count", stage="scan", status="succeeded") == 1
    assert value(samples, "rollgate_pipeline_stage_duration_seconds_sum", stage="build",
                 status="succeeded") == pytest.approx(43, abs=0.1)


@pytest.mark.django_db
def test_queue_lag_is_the_oldest_waiting_work_and_the_celery_queue_length(make_release, settings):
    now = timezone.now()
    release = make_release("v1.0.0", "staging")
    Rollout.objects.create(release=release, status=RolloutStatus.PENDING)
    Rollout.objects.filter(release=release).update(queued_at=now - timedelta(seconds=125))
    gray = make_release("v1.1.0", "test")
    Rollout.objects.create(release=gray, status=RolloutStatus.SUCCEEDED, traffic_seq=3, traffic_applied_seq=2,
                           traffic_queued_at=now - timedelta(seconds=40), traffic_redrives=2, redrives=1)
    settings.ROLLGATE_METRICS_QUEUES = ["w17-test-gate", "w17-test-empty"]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("w17-test-gate")
    broker.lpush("w17-test-gate", "m1", "m2", "m3")
    try:
        samples = scrape()
    finally:
        broker.delete("w17-test-gate")
    assert 124 <= value(samples, "rollgate_queue_oldest_waiting_seconds", work="rollout") < 140
    assert 39 <= value(samples, "rollgate_queue_oldest_waiting_seconds", work="traffic") < 55
    assert value(samples, "rollgate_queue_oldest_waiting_seconds", work="stage") == 0
    assert value(samples, "rollgate_redrives_total", work="traffic") == 2
    assert value(samples, "rollgate_redrives_total", work="rollout") == 1
    assert value(samples, "rollgate_queue_messages", queue="w17-test-gate") == 3
    assert value(samples, "rollgate_queue_messages", queue="w17-test-empty") == 0


@pytest.mark.django_db(transaction=True)
def test_gate_evaluations_report_duration_and_prometheus_errors(live_release, make_release, rm, settings):
    settings.PROMETHEUS_URL = "http://127.0.0.1:1"  # nothing listens: every evaluation fails to read
    for tag in ("v1.1.0",):
        canary = make_release(tag, "staging")
        release_promote(actor=Actor.of(rm), release_id=canary.pk)
    for _ in range(3):
        sla_services.gate_evaluate(sla_services.gate_collect())
    samples = scrape()
    assert value(samples, "rollgate_gate_evaluation_seconds_count", environment="staging") == 3
    assert value(samples, "rollgate_gate_evaluation_errors_total", environment="staging") == 3
    assert value(samples, "rollgate_gate_evaluation_seconds_bucket", environment="staging", le="+Inf") == 3
    assert value(samples, "rollgate_store_up") == 1


@pytest.mark.django_db
def test_breach_to_stable_runs_from_the_alert_start_to_traffic_back(live_release, make_release, rm, settings):
    settings.ROLLGATE_ALERTMANAGER_ACTIONS = {"*": "rollback"}
    Environment.objects.filter(name="staging").update(deploy_target=DeployTargetKind.NONE)
    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    started = (timezone.now() - timedelta(seconds=95)).isoformat().replace("+00:00", "Z")
    alert_receive(alert={"status": "firing", "labels": {"service": "agent-infer", "env": "staging"},
                         "annotations": {"summary": "errors"}, "startsAt": started, "fingerprint": "ab12"})
    assert Release.objects.get(pk=canary.pk).status == ReleaseStatus.ROLLED_BACK
    # the deploy worker reports traffic back on the stable (Celery task_success of deploy.roll_back)
    seconds = traffic_back_on_stable(task_name="deploy.roll_back", release_id=canary.pk, result="done")
    assert 95 <= seconds < 110
    assert traffic_back_on_stable(task_name="deploy.roll_back", release_id=canary.pk, result="failed") is None
    # the sweeper may send the roll-back again (issue 13): measured once
    assert traffic_back_on_stable(task_name="deploy.roll_back", release_id=canary.pk, result="done") is None
    samples = scrape()
    bucket = "rollgate_breach_to_stable_seconds_bucket"
    assert value(samples, bucket, environment="staging", cause="alertmanager", le="60.0") == 0
    assert value(samples, bucket, environment="staging", cause="alertmanager", le="120.0") == 1
    assert value(samples, "rollgate_breach_to_stable_seconds_count", environment="staging",
                 cause="alertmanager") == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_live_sockets_count_open_websockets(qa, rm):
    async def opened(user):
        communicator = WebsocketCommunicator(LiveEventsConsumer.as_asgi(), "/ws/live/")
        communicator.scope["user"] = user
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        return communicator

    def sockets():
        from django.db import connection

        try:
            return value(scrape(), "rollgate_live_sockets")
        finally:
            connection.close()  # this runs in asgiref's worker thread: leave no connection open at teardown

    # Servers that other tests started (some still running, some killed but counted for up to
    # PROCESS_GAUGE_STALE_SECONDS) add their own sockets: count relative to what is open before.
    # This process publishes its count when a socket opens or closes, so measure from the first open on.
    first = await opened(qa)
    with_one = await sync_to_async(sockets)()
    assert with_one >= 1
    second = await opened(rm)
    assert await sync_to_async(sockets)() == with_one + 1
    await first.disconnect()
    await asyncio.sleep(0.2)
    assert await sync_to_async(sockets)() == with_one
    await second.disconnect()
    await asyncio.sleep(0.2)
    assert await sync_to_async(sockets)() == with_one - 1


@pytest.mark.django_db
def test_metrics_are_closed_in_production_unless_a_token_or_open(settings):
    settings.ROLLGATE_METRICS_OPEN = False
    settings.ROLLGATE_METRICS_TOKEN = ""
    response = APIClient().get("/metrics")
    assert response.status_code == 403 and "ROLLGATE_METRICS_TOKEN" in response.json()["detail"]
    settings.ROLLGATE_METRICS_TOKEN = "scrape-tok-0042"
    response = APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert "rollgate_releases" in APIClient().get(
        "/metrics", HTTP_AUTHORIZATION="Bearer scrape-tok-0042").content.decode()


@pytest.mark.django_db
def test_trace_metrics_endpoint_is_still_there():
    assert APIClient().get("/metrics/traces").status_code == 200
