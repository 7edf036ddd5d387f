"""Long lists page by cursor: every row once, newest first, at the same cost at any depth, no COUNT(*) unless asked."""
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from releases.choices import ReleaseStatus as S
from releases.models import AgentService, Environment, Release, Version
from tests.conftest import client_for, sha


def seed_releases(count: int, dev) -> None:
    """`count` releases written in bulk: many share a created_at, so the cursor must also order by id."""
    env = Environment.objects.get(name="dev")
    service = AgentService.objects.create(name=f"bulk-{count}", image_repository="registry.example.com/bulk")
    versions = Version.objects.bulk_create(Version(service=service, tag=f"v0.0.{i}", kind="release", commit_sha=sha())
                                           for i in range(count))
    Release.objects.bulk_create(Release(service=service, environment=env, version=v, status=S.FAILED, started_by=dev)
                                for v in versions)


def next_link(response) -> str | None:
    match = re.search(r'<([^>]+)>; rel="next"', response.get("Link", ""))
    return match.group(1) if match else None


def test_following_next_links_lists_every_release_once_newest_first(environments, dev):
    seed_releases(25, dev)
    client = client_for(dev)
    response = client.get("/api/releases/", {"limit": 10})
    seen = []
    while True:
        assert response.status_code == 200, response.content
        assert "X-Total-Count" not in response
        seen += [r["id"] for r in response.json()]
        link = next_link(response)
        if link is None:
            break
        response = client.get(link)
    expected = list(Release.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    assert seen == expected and len(seen) == 25


def test_prev_link_returns_to_the_newer_page(environments, dev):
    seed_releases(12, dev)
    client = client_for(dev)
    first = client.get("/api/releases/", {"limit": 5})
    second = client.get(next_link(first))
    prev = re.search(r'<([^>]+)>; rel="prev"', second["Link"]).group(1)
    assert [r["id"] for r in client.get(prev).json()] == [r["id"] for r in first.json()]


def test_total_is_counted_only_when_asked(environments, dev):
    seed_releases(3, dev)
    client = client_for(dev)
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/releases/")
    assert not [q for q in queries if "COUNT(" in q["sql"]]
    assert client.get("/api/releases/", {"count": "true"})["X-Total-Count"] == "3"


def test_deep_offsets_and_forged_cursors_are_refused_with_the_parameter_named(environments, dev, auditor):
    client = client_for(dev)
    response = client.get("/api/releases/", {"offset": 5000})
    assert response.status_code == 400 and "offset" in response.json()["errors"]
    assert "cursor" in response.json()["detail"]
    response = client_for(auditor).get("/api/audit-events/", {"cursor": "not-a-cursor"})
    assert response.status_code == 400 and "cursor" in response.json()["errors"]
    response = client.get("/api/releases/", {"cursor": "bm90LWpzb24"})
    assert response.status_code == 400 and "cursor" in response.json()["errors"]
    response = client.get("/api/releases/", {"limit": "ten"})
    assert response.status_code == 400 and "limit" in response.json()["errors"]


def test_small_offsets_still_work_for_old_scripts(environments, dev):
    seed_releases(8, dev)
    client = client_for(dev)
    everything = [r["id"] for r in client.get("/api/releases/").json()]
    assert [r["id"] for r in client.get("/api/releases/", {"offset": 3, "limit": 2}).json()] == everything[3:5]


def test_a_deep_page_costs_the_same_queries_as_the_first(environments, dev):
    seed_releases(30, dev)
    client = client_for(dev)
    response = client.get("/api/releases/", {"limit": 5})
    with CaptureQueriesContext(connection) as first:
        client.get("/api/releases/", {"limit": 5})
    for _ in range(4):
        response = client.get(next_link(response))
    with CaptureQueriesContext(connection) as deep:
        client.get(next_link(response))
    assert len(deep) == len(first)
