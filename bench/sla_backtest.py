"""Policy backtest speed: prints `backtest_releases_per_s` (goal >= 100).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate REDIS_URL=redis://127.0.0.1:6379/1 \
      PYTHONPATH=. .venv/bin/python bench/sla_backtest.py [--releases 1000] [--reports 3]

A throwaway database (<db>_bench_backtest) gets 1 000 past releases of one environment, each with 3 stored SLA
reports (canary and stable readings as the gate stores them) and its status changes (a quarter rolled back), then
`sla.backtest.backtest` replays all of them with a candidate policy (best of 3 runs). The database is dropped at
the end.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402


def seed(releases: int, reports: int) -> None:
    from releases.models import AgentService, AuditEvent, Environment, Release, Version
    from sla.models import SlaReport

    user = get_user_model().objects.create_user(username="bench")
    service = AgentService.objects.create(name="agent-bench", image_repository="registry.example.com/agent/bench")
    env = Environment.objects.create(name="staging", namespace="agent-staging", position=2)
    t0 = timezone.now() - timedelta(days=30)
    versions = Version.objects.bulk_create([Version(service=service, tag=f"v1.{i}.0", kind="release",
                                                    commit_sha=f"{i:040x}") for i in range(releases)])
    rows = Release.objects.bulk_create([Release(service=service, environment=env, version=v, started_by=user,
                                                status="rolled_back" if i % 4 == 0 else "superseded")
                                        for i, v in enumerate(versions)])

    def metrics(n, f):
        return {"request_count": {"value": n, "query": "q", "window_s": 600},
                "failed_request_count": {"value": f, "query": "q", "window_s": 600},
                "trace_success_rate": {"value": 1 - f / n, "query": "q", "window_s": 600},
                "trace_latency_p95": {"value": 0.5, "query": "q", "window_s": 600}}

    audit, stored = [], []
    for i, release in enumerate(rows):
        start = t0 + timedelta(minutes=30 * i)
        audit.append(AuditEvent(actor_name="rm", action="release.promote", object_type="release",
                                object_id=str(release.pk), release=release, from_state="ready", to_state="gray",
                                created_at=start))
        end = "rolled_back" if i % 4 == 0 else "live"
        audit.append(AuditEvent(actor_name="rm", action=f"release.{end}", object_type="release",
                                object_id=str(release.pk), release=release, from_state="gray", to_state=end,
                                created_at=start + timedelta(minutes=20)))
        for number in range(1, reports + 1):
            failed = 20 * number if i % 4 == 0 else 2 * number
            stored.append(SlaReport(
                release=release, service=service, environment=env, sequence=number, gray_weight=5,
                version=release.version.tag, start_ts=start, agent_group="bench", status="watching", action="hold",
                outcome="EVALUATED", evaluated_at=start + timedelta(minutes=5 * number), verdict={},
                readings={"canary": {"metrics": metrics(1000 * number, failed), "latency_buckets": []},
                          "baseline": {"metrics": metrics(20000, 20), "latency_buckets": []}}))
    AuditEvent.objects.bulk_create(audit)
    SlaReport.objects.bulk_create(stored, batch_size=1000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--reports", type=int, default=3)
    args = parser.parse_args()
    if not settings.DATABASES["default"]["NAME"] or "postgres" not in settings.DATABASES["default"]["ENGINE"]:
        sys.exit("set DATABASE_URL to a PostgreSQL database (the benchmark measures the real thing)")
    base = settings.DATABASES["default"]["NAME"]
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{base}_bench_backtest"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from sla import backtest
        from sla.policy import SlaPolicy

        seed(args.releases, args.reports)
        candidate = SlaPolicy(pause_below_success_rate=0.995)
        best = float("inf")
        result = None
        for _ in range(3):
            began = time.perf_counter()
            result = backtest.backtest(candidate, backtest.past_releases("staging", limit=args.releases))
            best = min(best, time.perf_counter() - began)
        assert result["releases"] == args.releases, result["releases"]
        print(f"backtest_releases {result['releases']}")
        print(f"backtest_false_stops {result['false_stops']}")
        print(f"backtest_missed_regressions {result['missed_regressions']}")
        print(f"backtest_releases_per_s {result['releases'] / best:.1f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
