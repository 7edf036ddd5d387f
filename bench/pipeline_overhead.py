"""Orchestration overhead of the pipeline stages, with no-op stage work, on real Celery workers.

Figures:
  stage_overhead_ms  median over 10 sequential pipelines of (release created -> release ready) / 4 stages:
                     claim, heartbeat thread, two log lines + live events, outcome, enqueue of the next stage,
                     release transitions. The stage work itself is pipelines.runners.noop.
  pipelines_100_s    wall time for 100 pipelines created at once to reach ready on 2 worker processes.

Uses a throw-away database (bench_pipelines_<db>, created and dropped here) and a Celery queue of its own.
Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate REDIS_URL=redis://127.0.0.1:6379/1 \
     .venv/bin/python bench/pipeline_overhead.py
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUEUE = f"bench-pipelines-{uuid.uuid4().hex[:8]}"
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

NOOP = "pipelines.runners.noop"
SEQUENTIAL = 10
CONCURRENT = 100


def database_url(name: str) -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def start_worker(index: int, db_name: str, log_dir: Path) -> subprocess.Popen:
    # Persistent connections in the workers: without them every task pays a PostgreSQL connect (~10-20 ms).
    env = {**os.environ, "DATABASE_URL": database_url(db_name) + "?conn_max_age=600", "REDIS_URL": settings.REDIS_URL,
           "CELERY_TASK_DEFAULT_QUEUE": QUEUE, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "ROLLGATE_CHANNEL_PREFIX": settings.ROLLGATE_CHANNEL_PREFIX,  # live events: same deployment as us
           "ROLLGATE_PIPELINE_RUNNERS": json.dumps({s: NOOP for s in ("prepare", "build", "scan", "push")})}
    log = open(log_dir / f"worker-{index}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-Q", QUEUE,
                             "-n", f"bench{index}-{QUEUE}@127.0.0.1", "-l", "warning", "--without-gossip",
                             "--without-mingle", "--without-heartbeat"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def main() -> None:
    import tempfile

    base_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_pipelines_{base_name}"
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    workers = []
    try:
        from releases.choices import ReleaseStatus, Role
        from releases.models import AgentService, Environment, Release
        from releases.services import Actor, release_create
        from tests.conftest import make_user

        Environment.objects.create(name="staging", namespace="agent-staging", position=2)
        service = AgentService.objects.create(name="agent-bench", image_repository="127.0.0.1:5000/agent/agent-bench")
        actor = Actor.of(make_user("bench-dev", Role.DEVELOPER))
        log_dir = Path(tempfile.mkdtemp(prefix="rollgate-bench-"))
        workers = [start_worker(i, db_name, log_dir) for i in range(2)]
        counter = iter(range(10_000))

        def create() -> int:
            n = next(counter)
            return release_create(actor=actor, service=service.name, environment="staging", tag=f"v9.{n}.0-rc1",
                                  commit=f"{n + 1:040x}").pk

        def wait_ready(ids: list[int], timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while Release.objects.filter(pk__in=ids, status=ReleaseStatus.READY).count() < len(ids):
                if time.monotonic() > deadline:
                    raise SystemExit(f"pipelines did not finish in {timeout} s; worker logs in {log_dir}")
                time.sleep(0.005)

        wait_ready([create()], timeout=60)  # warm-up: workers connected, code imported
        per_stage = []
        for _ in range(SEQUENTIAL):
            started = time.perf_counter()
            wait_ready([create()], timeout=30)
            per_stage.append((time.perf_counter() - started) * 1000 / 4)
        started = time.perf_counter()
        ids = [create() for _ in range(CONCURRENT)]
        wait_ready(ids, timeout=600)
        wall = time.perf_counter() - started
        print(f"stage_overhead_ms {statistics.median(per_stage):.1f}")
        print(f"pipelines_100_s {wall:.2f}")
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        connection.creation.destroy_test_db(base_name, verbosity=0)


if __name__ == "__main__":
    main()
