"""Orchestration overhead of the pipeline stages, with no-op stage work, on real Celery workers.

Figures:
  stage_overhead_ms  median over 10 sequential pipelines of (release created -> release ready) / 4 stages:
                     claim, heartbeat thread, two log lines + live events, outcome, enqueue of the next stage,
                     release transitions. The stage work itself is pipelines.runners.noop.
  pipelines_100_s    wall time for 100 pipelines created at once to reach ready on 2 worker processes.
  promote_next_env_s median over 3 versions of (POST-equivalent release_promote_next_env on a version live in
                     staging -> the prod release ready with the reused digest), on one worker with the real stage
                     runners and the local registry (127.0.0.1:5000): prepare reads the manifest back, build and
                     push are skipped, the stored scan is judged for prod. Nothing can verify the image on this
                     offline machine, so the prod scan waits for a release manager's override: the bench gives it
                     the moment the scan waits (a person takes longer). Goal <= 5 s.

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


def start_worker(index: int, db_name: str, log_dir: Path, real_runners: bool = False) -> subprocess.Popen:
    # Persistent connections in the workers: without them every task pays a PostgreSQL connect (~10-20 ms).
    env = {**os.environ, "DATABASE_URL": database_url(db_name) + "?conn_max_age=600", "REDIS_URL": settings.REDIS_URL,
           "CELERY_TASK_DEFAULT_QUEUE": QUEUE, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "ROLLGATE_CHANNEL_PREFIX": settings.ROLLGATE_CHANNEL_PREFIX,  # live events: same deployment as us
           "ROLLGATE_PIPELINE_RUNNERS": "{}" if real_runners else json.dumps(
               {s: NOOP for s in ("prepare", "build", "scan", "push")})}
    log = open(log_dir / f"worker-{index}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-Q", QUEUE,
                             "-n", f"bench{index}-{QUEUE}@127.0.0.1", "-l", "warning", "--without-gossip",
                             "--without-mingle", "--without-heartbeat"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


PROMOTIONS = 3


def promote_next_env(log_dir: Path) -> list[float]:
    """Build a version in staging (real runners), make it live there, then time the promotion to prod."""
    import shutil
    import tempfile

    from pipelines.models import Stage, StageStatus
    from pipelines.services import scan_override
    from releases.choices import ReleaseStatus, Role
    from releases.models import AgentService, Environment, Release
    from releases.services import Actor, release_create, release_promote, release_promote_next_env
    from tests.conftest import make_user

    Environment.objects.create(name="prod", namespace="agent-prod", position=3, protected=True,
                               required_approvals={"release_manager": 1, "qa": 1})
    context = Path(tempfile.mkdtemp(prefix="rollgate-bench-context-")) / "agent_service"
    shutil.copytree(ROOT / "tests" / "pipelines" / "fixtures" / "agent_service", context)
    shutil.copy2("/bin/busybox", context / "busybox")
    name = f"agent-bench-{uuid.uuid4().hex[:6]}"
    service = AgentService.objects.create(name=name, image_repository=f"127.0.0.1:5000/agent/{name}",
                                          source_path=str(context))
    dev, rm = Actor.of(make_user("bench-dev2", Role.DEVELOPER)), Actor.of(make_user("bench-rm", Role.RELEASE_MANAGER))

    def settle(release_id: int, timeout: float) -> Release:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if Stage.objects.filter(pipeline__release_id=release_id, name="scan", status=StageStatus.WAITING).exists():
                scan_override(actor=rm, release_id=release_id, reason="bench: offline machine, no vulnerability data")
            release = Release.objects.select_related("version").get(pk=release_id)
            if release.status in (ReleaseStatus.READY, ReleaseStatus.CI_FAILED, ReleaseStatus.BLOCKED):
                return release
            time.sleep(0.01)
        raise SystemExit(f"release #{release_id} did not settle in {timeout} s; worker log in {log_dir}")

    timings = []
    for n in range(PROMOTIONS):
        staging = release_create(actor=dev, service=name, environment="staging", tag=f"v8.{n}.0",
                                 commit=f"{n + 0xbeef:040x}")
        built = settle(staging.pk, timeout=300)
        if built.status != ReleaseStatus.READY:
            raise SystemExit(f"the staging build ended {built.status}: {built.status_reason}")
        release_promote(actor=rm, release_id=staging.pk, full=True)
        started = time.perf_counter()
        prod, _ = release_promote_next_env(actor=rm, release_id=staging.pk)
        ready = settle(prod.pk, timeout=60)
        timings.append(time.perf_counter() - started)
        if ready.status != ReleaseStatus.READY or ready.version.image_digest != built.version.image_digest:
            raise SystemExit(f"prod release #{prod.pk} ended {ready.status} ({ready.status_reason})")
        if not Stage.objects.filter(pipeline__release=prod, name="build", status=StageStatus.SKIPPED).exists():
            raise SystemExit(f"prod release #{prod.pk} was built again instead of reusing the image")
    return timings


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
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        workers = [start_worker(9, db_name, log_dir, real_runners=True)]
        print(f"promote_next_env_s {statistics.median(promote_next_env(log_dir)):.2f}")
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
