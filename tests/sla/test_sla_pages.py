"""SLA pages: the release page's SLA section with verdict and chart data, the QA snapshot list and detail, and the
live event that refreshes them."""
import asyncio
import json
import re

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections
from django.test import Client

from releases.events import release_group
from sla import services
from sla.models import SlaReport

from .conftest import RAMP_CANARY

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_release_page_loads_the_sla_section_and_refreshes_it_on_live_sla(canary_of, rm):
    release = canary_of("ramp-healthy")
    page = logged_in(rm).get(f"/releases/{release.pk}/").content.decode()
    assert f'hx-get="/sla/releases/{release.pk}/"' in page and "live:sla from:body" in page
    section = logged_in(rm).get(f"/sla/releases/{release.pk}/").content.decode()
    assert 'data-sla-status="none"' in section and "Not evaluated yet" in section


def test_sla_section_shows_the_verdict_reasons_queries_and_chart_series(canary_of, history_end, rm):
    release = canary_of("ramp-slow")
    services.gate_run(at=history_end)
    section = logged_in(rm).get(f"/sla/releases/{release.pk}/").content.decode()
    assert 'data-sla-status="rollbacked"' in section and 'data-sla-action="rollback"' in section
    assert "canary traffic cut" in section and "histogram_quantile(0.95" in section
    assert "rolled back: canary traffic cut" in section  # what the gate did
    series = json.loads(re.search(r'<script id="sla-series" type="application/json">(.*?)</script>', section,
                                  re.S).group(1))
    assert series["canary_p95_ms"][0] > series["baseline_p95_ms"][0] * 1.2
    assert section.count("<canvas data-sla-chart=") == 5 and "vendor/chart.js/dist/chart.umd.js" in section


def test_manual_review_is_raised_visibly_on_the_release_page(canary_of, history_end, qa):
    release = canary_of("ramp-callback")
    services.gate_run(at=history_end)
    section = logged_in(qa).get(f"/sla/releases/{release.pk}/").content.decode()
    assert 'role="alert"' in section and "Manual review needed" in section and "output channel anomaly" in section


def test_qa_lists_filters_and_opens_snapshots_with_every_number(canary_of, history_end, qa):
    canary_of("ramp-healthy")
    canary_of("ramp-slow")
    services.gate_run(at=history_end)
    client = logged_in(qa)
    listing = client.get("/sla/reports/", {"status": "rollbacked"}).content.decode()
    assert listing.count("data-report-id=") == 1 and "ramp-slow" in listing
    assert 'href="/api/sla/reports.csv?status=rollbacked"' in listing
    everything = client.get("/sla/reports/", {"version": RAMP_CANARY}, HTTP_HX_REQUEST="true").content.decode()
    assert everything.count("data-report-id=") == 2 and "<html" not in everything
    bad = client.get("/sla/reports/", {"status": "nope", "version": "v1;x"})
    assert bad.status_code == 200 and "status: one of verified" in bad.content.decode()

    report = SlaReport.objects.get(service__name="ramp-slow")
    detail = client.get(f"/sla/reports/{report.pk}/").content.decode()
    assert 'data-field="p95_latency_ms"' in detail and "p95_latency_rollback" in detail
    assert "300 s" in detail and "agent_request_latency_seconds_bucket" in detail
    chinese = client.get(f"/sla/reports/{report.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert f"SLA 快照 #{report.pk}" in chinese and "<h2>裁决</h2>" in chinese and "<h2>规则</h2>" in chinese
    assert "p95_latency_rollback" in chinese and "Verdict" not in chinese  # rule codes stay as they are
    findings_csv = client.get(f"/sla/reports/{report.pk}/findings.csv")
    assert findings_csv["Content-Type"].startswith("text/csv")
    assert "p95_latency_rollback,True,rollback" in findings_csv.content.decode()
    assert client.get("/sla/reports/999999/").status_code == 404


def test_users_without_a_role_see_no_snapshots(canary_of, history_end, nobody):
    canary_of("ramp-healthy")
    services.gate_run(at=history_end)
    response = logged_in(nobody).get("/sla/reports/")
    page = response.content.decode()
    assert response.status_code == 403 and "no Rollgate role" in page and "data-report-id=" not in page
    assert logged_in(nobody).get(f"/sla/reports/{SlaReport.objects.get().pk}/").status_code == 404


@pytest.mark.asyncio
async def test_every_verdict_is_a_live_sla_event_for_the_release_page(canary_of, history_end):
    release = await sync_to_async(canary_of)("ramp-callback")
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(release_group(release.pk), channel)
    try:
        await sync_to_async(services.gate_run)(at=history_end)
        for _ in range(10):
            message = await asyncio.wait_for(layer.receive(channel), timeout=5)
            if message["event"]["type"] == "sla.verdict":
                break
        event = message["event"]
        assert (event["type"], event["release_id"], event["status"]) == ("sla.verdict", release.pk, "manual_review")
    finally:
        await layer.group_discard(release_group(release.pk), channel)
        await sync_to_async(connections.close_all)()  # the worker thread's connection, so the test database can go
