"""seed_fleet writes a fleet the product can read: histories, one live release per pair, canaries, waiting work."""
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count
from django.test import Client

from releases.choices import ReleaseStatus as S
from releases.models import AgentService, AuditEvent, Release


def test_seed_fleet_writes_histories_the_pages_can_show(db):
    call_command("seed_fleet", services=30, environments=4, releases_per=6, quiet=True)
    call_command("seed_fleet", services=25, environments=4, releases_per=6, quiet=True)  # adds, never clashes
    assert AgentService.objects.filter(name__startswith="fleet-").count() == 55
    assert Release.objects.count() == 55 * 4 * 6
    per_pair = Release.objects.filter(status=S.LIVE).values("service", "environment").annotate(n=Count("id"))
    assert len(per_pair) == 55 * 4 and {row["n"] for row in per_pair} == {1}
    assert Release.objects.filter(status=S.GRAY, environment__name="staging").count() == 55
    assert AuditEvent.objects.count() > 3 * Release.objects.count()
    # history is spread in time: the newest rows by time are not simply the highest ids
    newest = list(Release.objects.order_by("-created_at", "-id").values_list("id", flat=True)[:20])
    assert newest != sorted(newest, reverse=True)
    client = Client()
    client.force_login(get_user_model().objects.get(username="fleet-rm"))
    page = client.get("/").content.decode()
    assert "<b>55</b> services · page 1 of 2" in page and "fleet-00049" in page and "fleet-00050" not in page
    assert client.get("/approvals/").status_code == 200
