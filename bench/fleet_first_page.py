"""Fleet page benchmark: prints `fleet_page_ms <median>` and `fleet_page_queries <count>`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate python bench/fleet_first_page.py

fleet_page_ms: server-side time to render the fleet page (its first 50 services x environments, approval badges) for a
release manager, with 1 000 services x 4 environments: every cell has a live release, every staging cell also a
canary at 5-50 %, every prod cell a release waiting for approvals (6 000 releases). Median of 7 renders after one
warm-up, through Django's test client (URL routing, session, middleware, selectors, template). The data lives in a
throwaway database (<db>_bench_fleet) that is dropped at the end.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from fleet_page import throwaway_database  # noqa: E402  (one throwaway-database helper for both benches)

SERVICES = 1000
RUNS = 7


def build_fleet(count: int):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from releases.choices import ReleaseStatus as S
    from releases.choices import Role
    from releases.models import AgentService, Environment, GrayPhase, Release, Version

    users = get_user_model().objects
    rm = users.create_user("bench-rm", password="bench-password")
    rm.groups.add(Group.objects.create(name=Role.RELEASE_MANAGER))
    dev = users.create_user("bench-dev", password="bench-password")
    envs = []
    for position, name in enumerate(["dev", "test", "staging", "prod"]):
        env = Environment.objects.create(
            name=name, namespace=f"agent-{name}", position=position, protected=name == "prod",
            required_approvals={"release_manager": 1, "qa": 1} if name == "prod" else {})
        GrayPhase.objects.bulk_create(GrayPhase(environment=env, position=i, weight=w)
                                      for i, w in enumerate([5, 10, 30, 50, 100]))
        envs.append(env)
    services = AgentService.objects.bulk_create(
        AgentService(name=f"agent-{i:04d}", image_repository=f"registry.example.com/agent/agent-{i:04d}")
        for i in range(count))
    versions = Version.objects.bulk_create(
        Version(service=s, tag=tag, kind="release", commit_sha=f"{s.pk:020x}{n:020x}")
        for s in services for n, tag in enumerate(["v1.0.0", "v1.1.0"]))
    by_service = {}
    for version in versions:
        by_service.setdefault(version.service_id, []).append(version)
    releases = []
    for index, s in enumerate(services):
        stable, canary = by_service[s.pk]
        for env in envs:
            releases.append(Release(service=s, environment=env, version=stable, status=S.LIVE, gray_weight=100,
                                    started_by=dev))
        releases.append(Release(service=s, environment=envs[2], version=canary, status=S.GRAY,
                                gray_weight=[5, 10, 30, 50][index % 4], started_by=dev))
        releases.append(Release(service=s, environment=envs[3], version=canary, status=S.READY, started_by=dev))
    Release.objects.bulk_create(releases, batch_size=2000)
    return rm


def main() -> None:
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with throwaway_database("bench_fleet"):
        rm = build_fleet(SERVICES)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(rm)
        response = client.get("/")
        page = response.content
        assert response.status_code == 200 and b"agent-0000" in page and b"<b>1000</b> services" in page, page[:300]
        timings = []
        for _ in range(RUNS):
            start = time.perf_counter()
            client.get("/")
            timings.append((time.perf_counter() - start) * 1000)
        with CaptureQueriesContext(connection) as queries:
            client.get("/")
        print(f"fleet_page_ms {statistics.median(timings):.1f}")
        print(f"fleet_page_queries {len(queries)}")


if __name__ == "__main__":
    main()
