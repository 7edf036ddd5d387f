"""The routing section of the release page: instances per version, the table, blue-green buttons."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from releases.choices import ReleaseStatus
from releases.models import AuditEvent
from releases.services import Actor, release_promote
from routing.models import AgentInstance, RoutingState


@pytest.fixture
def canary(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.GRAY
    return release


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_section_lists_live_and_stale_instances_per_version(canary, rm, environments, service):
    now = timezone.now()
    for agent_id, version, seen in (("a-1", "v1.0.0", now), ("a-2", "v1.0.0", now - timedelta(minutes=5)),
                                    ("a-3", "v1.1.0", now)):
        AgentInstance.objects.create(service=service, environment=environments["staging"], agent_id=agent_id,
                                     version=version, registered_at=seen, last_seen=seen)
    page = logged_in(rm).get(f"/releases/{canary.pk}/routing/").content.decode()
    assert 'data-version="v1.0.0"><td><b>v1.0.0</b></td><td class="live-count">1</td><td class="stale-count">1' in page
    assert 'data-version="v1.1.0"><td><b>v1.1.0</b></td><td class="live-count">1</td><td class="stale-count">0' in page
    assert 'id="routing-weight">5 %' in page
    # The release page pulls the section in.
    assert f"/releases/{canary.pk}/routing/" in logged_in(rm).get(f"/releases/{canary.pk}/").content.decode()


def test_cut_over_and_switch_back_buttons(canary, rm, qa):
    client = logged_in(rm)
    assert client.post(f"/releases/{canary.pk}/routing/cut_over/").status_code == 302
    assert RoutingState.objects.get().override == "cut_over"
    assert 'id="routing-weight">100 % · <b>cut over</b>' in client.get(f"/releases/{canary.pk}/routing/").content.decode()
    client.post(f"/releases/{canary.pk}/routing/switch_back/")
    assert 'id="routing-weight">0 % · <b>switched back</b>' in client.get(f"/releases/{canary.pk}/routing/").content.decode()
    assert AuditEvent.objects.filter(object_type="routing").count() == 2

    page = logged_in(qa).get(f"/releases/{canary.pk}/routing/").content.decode()
    assert 'data-action="cut_over" disabled' in page and "only release_manager, ops may" in page
    logged_in(qa).post(f"/releases/{canary.pk}/routing/cut_over/")
    assert AuditEvent.objects.filter(object_type="routing").count() == 2
