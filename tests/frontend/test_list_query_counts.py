"""Every long list costs the same number of queries for a small and a five times larger fleet."""
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from releases.models import Release
from sla.models import SlaReport

PAGES = [("fleet-rm", "/"), ("fleet-rm", "/?status=gray"), ("fleet-rm", "/?service=fleet-0000&environment=prod"),
         ("fleet-rm", "/approvals/"), ("fleet-auditor", "/audit/"), ("fleet-auditor", "/audit/?action=release.create"),
         ("fleet-rm", "/sla/reports/")]
API = [("fleet-rm", "/api/releases/"), ("fleet-rm", "/api/releases/?environment=prod&status=ready"),
       ("fleet-auditor", "/api/audit-events/"), ("fleet-auditor", "/api/audit-events/?action=release.promote"),
       ("fleet-rm", "/api/sla/reports/")]


def add_reports() -> None:
    """An SLA report per staging canary, as the gate writes them."""
    from django.utils import timezone

    SlaReport.objects.bulk_create(
        SlaReport(release=r, service_id=r.service_id, environment_id=r.environment_id, sequence=1, gray_weight=5,
                  version="v", start_ts=timezone.now(), agent_group="g", status="watching", action="hold",
                  outcome="watching", evaluated_at=timezone.now(), verdict={}, readings={})
        for r in Release.objects.filter(status="gray").exclude(sla_reports__isnull=False))


def counts() -> dict[str, int]:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    out = {}
    for username, path in PAGES + API:
        client = APIClient() if path.startswith("/api/") else Client()
        client.force_login(users.get(username=username))
        client.get(path)  # warm caches (content types, sessions) out of the count
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        out[path] = len(queries)
    return out


@pytest.mark.django_db
def test_list_pages_and_endpoints_cost_the_same_queries_at_two_fleet_sizes():
    call_command("seed_fleet", services=12, environments=4, releases_per=4, quiet=True)
    add_reports()
    # at least one prod release waiting for approvals, so the small fleet reads them too
    newest = Release.objects.filter(environment__name="prod").latest("id")
    Release.objects.filter(pk=newest.pk).update(status="ready")
    small = counts()
    call_command("seed_fleet", services=48, environments=4, releases_per=4, quiet=True)
    add_reports()
    large = counts()
    assert Release.objects.count() == 60 * 4 * 4
    assert large == small
