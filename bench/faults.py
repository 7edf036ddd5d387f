"""Fault benchmark (issue 13): Redis restarts, worker kills and build load, against real processes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate .venv/bin/python bench/faults.py   # --kills 5

Runs web, build worker(s), the gate worker and beat as real processes (tests/faults/stack.py) on a database of its
own (<db>_bench_faults, dropped at the end) and a Redis of its own on a free port (killed and restarted here, never
the shared one), with the settings the project ships unless a figure says otherwise. Stages are timed no-ops
(tests/faults/plugins.py): the figures measure Rollgate's recovery, not image builds. Prints one line per figure:

  redis_restart_stuck               releases stuck of 20 created around a Redis restart without persistence (10 in
                                    flight when it dies, 5 while it is down, 5 after), 4 minutes after; goal 0
  redis_restart_all_ready_s         from the restart to the last of them ready (the sweeper's 30 s redrive delay)
  worker_kill_recovery_s            median over --kills kills of the whole worker mid-build: kill -> take-over
  worker_kill_recovery_max_s        the slowest of them; goal for both <= 30
  gate_interval_under_build_load_s  longest gap between gate evaluations (interval 2 s) while two 30 s builds fill
                                    both build slots; goal <= 4 (2 x the interval)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from fleet_page import out, throwaway_database  # noqa: E402  (bench/ is on sys.path when run as a script)
from tests.faults.conftest import TIMED_RUNNERS  # noqa: E402
from tests.faults.services import PrivateRedis  # noqa: E402
from tests.faults.stack import Stack, create_release  # noqa: E402


def seed() -> dict:
    from releases.choices import ReleaseStatus, Role
    from releases.models import AgentService, Environment, GrayPhase
    from releases.services import Actor, release_create, release_worker_transition
    from tests.conftest import make_user, sha

    for position, name in enumerate(["dev", "test", "staging"]):
        env = Environment.objects.create(name=name, namespace=f"agent-{name}", position=position)
        for index, weight in enumerate([5, 10, 30, 50, 100]):
            GrayPhase.objects.create(environment=env, position=index, weight=weight)
    AgentService.objects.create(name="agent-infer", image_repository="registry.example.com/agent/agent-infer")
    users = {"dev": make_user("dev", Role.DEVELOPER), "rm": make_user("rm", Role.RELEASE_MANAGER)}

    def make_release(tag: str, env: str = "staging"):
        from django.db import transaction

        with transaction.atomic():
            release = release_create(actor=Actor.of(users["dev"]), service="agent-infer", environment=env, tag=tag,
                                     commit=sha())
            release_worker_transition(release_id=release.pk, from_statuses={ReleaseStatus.PENDING},
                                      to_status=ReleaseStatus.READY, actor_name="pipeline",
                                      action="pipeline.succeeded")
        release.refresh_from_db()
        return release

    return {"users": users, "make_release": make_release}


def redis_restart(workdir: Path, db_url: str) -> tuple[int, float]:
    from releases.choices import ReleaseStatus
    from releases.models import Release

    redis = PrivateRedis(workdir / "redis").start()
    stack = Stack(workdir / "logs-redis", database_url=db_url, redis_url=redis.url,
                  ROLLGATE_PIPELINE_RUNNERS=TIMED_RUNNERS, ROLLGATE_TEST_STAGE_SECONDS="0.5")
    try:
        stack.web()
        stack.worker("worker", queues="celery")
        stack.worker("gate", queues="gate")
        stack.beat()
        token = stack.token("dev", "pw-dev")
        ids = [create_release(stack, token, f"v10.{n}.0") for n in range(10)]
        restarted_at = [0.0]

        def while_down():
            ids.extend(create_release(stack, token, f"v11.{n}.0") for n in range(5))

        redis.restart(graceful=False, while_down=while_down, down_s=1.0)
        restarted_at[0] = time.monotonic()
        ids.extend(create_release(stack, token, f"v12.{n}.0") for n in range(5))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            ready = Release.objects.filter(pk__in=ids, status=ReleaseStatus.READY).count()
            if ready == len(ids):
                break
            time.sleep(0.5)
        stuck = len(ids) - Release.objects.filter(pk__in=ids, status=ReleaseStatus.READY).count()
        return stuck, round(time.monotonic() - restarted_at[0], 1)
    finally:
        stack.stop()
        redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=["redis", "kill", "gate"])
    args = parser.parse_args()
    from tests.faults.test_gate_under_build_load import gate_gaps
    from tests.faults.test_worker_kill import kill_mid_build
    from tests.pipelines.conftest import worker_database_url

    with throwaway_database("bench_faults"), tempfile.TemporaryDirectory(prefix="rollgate-faults-") as tmp:
        tmp = Path(tmp)
        seeded = seed()
        db_url = worker_database_url()
        if "redis" in args.only:
            stuck, all_ready_s = redis_restart(tmp / "redis-restart", db_url)
            out("redis_restart_stuck", stuck)
            out("redis_restart_all_ready_s", all_ready_s)
        if "kill" in args.only:
            times = []
            for n in range(args.kills):
                outcome = kill_mid_build(tmp / f"kill-{n}", seeded["users"], whole_worker=True, build_seconds=20.0,
                                         tag=f"v20.{n}.0")
                times.append(outcome["took_over_s"])
                print(f"# kill {n + 1}: taken over after {outcome['took_over_s']:.1f} s", flush=True)
            out("worker_kill_recovery_s", round(statistics.median(times), 1))
            out("worker_kill_recovery_max_s", round(max(times), 1))
        if "gate" in args.only:
            interval = 2.0
            outcome = gate_gaps(tmp_path=tmp / "gate", make_release=seeded["make_release"], rm=seeded["users"]["rm"],
                                dev=seeded["users"]["dev"], interval_s=interval, watch_s=24.0, build_s=30.0)
            seen = outcome["seen"]
            if outcome["still_building"] != 2 or len(seen) < 2:
                sys.exit(f"the gate measurement did not run under load: {outcome['still_building']} builds, "
                         f"{len(seen)} evaluations")
            out("gate_interval_under_build_load_s", round(max(b - a for a, b in zip(seen, seen[1:])), 2))


if __name__ == "__main__":
    main()
