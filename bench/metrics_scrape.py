"""Cost of Rollgate's own /metrics at fleet scale (issue 17): prints `metrics_scrape_p50_ms`, `metrics_scrape_p95_ms`
and `metrics_scrape_bytes`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate_w17 REDIS_URL=redis://127.0.0.1:6379/6 \
      .venv/bin/python bench/metrics_scrape.py            # --services 1000 --releases-per 5 --runs 30

A database of its own (<db>_bench_metrics, dropped at the end) is seeded with `manage.py seed_fleet` (services x 4
environments x releases-per releases, with their audit rows) plus one finished pipeline stage per release. Then
GET /metrics is answered in-process (Django test client, the whole middleware stack) `--runs` times after two
warm-ups. What it costs is the database: a GROUP BY over releases, one over the promote/rollback audit rows, one
over finished stages, two MIN()s; the Redis part is a handful of HGETALLs.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_page import out, throwaway_database  # noqa: E402  (sets Django up)

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402


def seed_stages() -> int:
    from pipelines.models import Pipeline, Stage
    from releases.models import Release

    now = timezone.now()
    release_ids = list(Release.objects.values_list("id", flat=True))
    Pipeline.objects.bulk_create([Pipeline(release_id=pk) for pk in release_ids], batch_size=5000,
                                 ignore_conflicts=True)
    pipelines = Pipeline.objects.values_list("id", flat=True)
    Stage.objects.bulk_create([Stage(pipeline_id=pk, name="build", position=1, status="succeeded",
                                     started_at=now - timedelta(seconds=30 + pk % 600), finished_at=now)
                               for pk in pipelines], batch_size=5000, ignore_conflicts=True)
    return Stage.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--releases-per", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with throwaway_database("bench_metrics"):
        call_command("migrate", verbosity=0)
        call_command("seed_fleet", services=args.services, releases_per=args.releases_per, quiet=True)
        stages = seed_stages()
        from releases.models import AuditEvent, Release

        out("metrics_releases", Release.objects.count())
        out("metrics_audit_rows", AuditEvent.objects.count())
        out("metrics_stages", stages)
        with override_settings(ROLLGATE_METRICS_OPEN=True, ROLLGATE_METRICS_TOKEN=""):
            client = Client()
            for _ in range(2):
                warm = client.get("/metrics", HTTP_HOST="127.0.0.1")
                assert warm.status_code == 200, (warm.status_code, warm.content[:300])
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                response = client.get("/metrics", HTTP_HOST="127.0.0.1")
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
        times.sort()
        out("metrics_scrape_p50_ms", round(statistics.median(times), 1))
        out("metrics_scrape_p95_ms", round(times[int(0.95 * (len(times) - 1))], 1))
        out("metrics_scrape_bytes", len(response.content))


if __name__ == "__main__":
    main()
