"""Fixtures for the pipeline tests: real Celery worker processes, the engine/registry fixtures, pipeline services.

Worker processes get the test database (pytest-django's test_<db>) and this run's Redis db, so tests that use them
are transactional: the worker must see committed rows.
"""
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings

from releases.models import AgentService
from tests.conftest import app_database_url
from tests.pipelines.integrations.conftest import build_context, engine, registry  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def worker_database_url() -> str:
    """The test database as the app role (tests/conftest.py): workers run with the rights production gives them."""
    return app_database_url()


def wait_for(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Workers:
    """Start and stop `celery -A config worker` processes; every one is stopped when the test ends."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, queues: str = "celery,gate", **extra_env) -> subprocess.Popen:
        """A solo worker on ``queues`` (both by default: builds and the gate queue's traffic moves and sweeps)."""
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
               "DATABASE_URL": worker_database_url(), "REDIS_URL": settings.REDIS_URL,
               "ROLLGATE_PIPELINE_PUSH_BACKOFF_SECONDS": "0.1,0.2", "PYTHONUNBUFFERED": "1",
               **{k: str(v) for k, v in extra_env.items()}}
        name = f"w{len(self.processes)}-{uuid.uuid4().hex[:6]}@127.0.0.1"
        log_file = open(self.log_dir / f"worker-{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-Q", queues, "-n", name, "-l", "info",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        process.log_path = log_file.name
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the worker's whole process group: no chance to ack, clean up or finish the stage."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path}\n" + Path(p.log_path).read_text(errors="replace")[-4000:]
                         for p in self.processes)


@pytest.fixture
def workers(tmp_path, transactional_db):
    # Messages left by earlier runs would point at rows this database never had; start from an empty broker.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def buildable_service(build_context):
    """An agent service whose build context is on this machine and whose images go to the real registry."""

    def make(registry_address: str = "127.0.0.1:5000", name: str | None = None) -> AgentService:
        name = name or f"agent-t{uuid.uuid4().hex[:8]}"
        return AgentService.objects.create(name=name, image_repository=f"{registry_address}/agent/{name}",
                                           source_path=str(build_context))

    return make
