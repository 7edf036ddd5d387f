"""A worker killed mid-build, with the settings the project ships (issue 13): its stage is taken over within 30 s
by another worker and completes once; nothing waits for a reaper or a person.

Two ways a worker dies: the whole worker (main process and pool, as a node loss or OOM kill does) — its message stays
unacknowledged in Redis for the visibility timeout (an hour), so the sweeper finds the stage by its stale heartbeat —
and one pool process — the main process hands its message back at once, and that delivery takes the stage over when
the heartbeat goes stale instead of being dropped.
"""
import os
import signal
import time
from pathlib import Path

import pytest

from pipelines.models import Stage, StageStatus
from releases.choices import ReleaseStatus
from releases.models import Release
from tests.faults.conftest import TIMED_RUNNERS
from tests.faults.services import PrivateRedis
from tests.faults.stack import Stack, create_release
from tests.pipelines.conftest import wait_for, worker_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TAKEOVER_GOAL_S = 30.0


def journal_lines(path: Path, stage_id: int) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.split()[0] == str(stage_id)]


def kill_mid_build(tmp_path: Path, api_users, *, whole_worker: bool, build_seconds: float = 25.0,
                   tag: str = "v9.0.0") -> dict:
    """Start a stack (two build workers, the gate worker, beat) with shipped settings, create a release, kill
    the process running its build mid-way. Returns what happened and when."""
    redis = PrivateRedis(tmp_path / "redis").start()
    journal = tmp_path / "journal"
    stack = Stack(tmp_path / "logs", database_url=worker_database_url(), redis_url=redis.url,
                  ROLLGATE_PIPELINE_RUNNERS=TIMED_RUNNERS, ROLLGATE_TEST_STAGE_SECONDS="0.2",
                  ROLLGATE_TEST_STAGE_SECONDS_BUILD=build_seconds, ROLLGATE_TEST_STAGE_JOURNAL=journal)
    try:
        stack.worker("worker-a", queues="celery")
        stack.worker("worker-b", queues="celery")
        stack.worker("gate", queues="gate")
        stack.beat()
        time.sleep(3)  # workers connected
        stack.web()  # through the API: the work goes to this stack's Redis
        release = Release.objects.get(pk=create_release(stack, stack.token("dev", "pw-dev"), tag))
        build = Stage.objects.get(pipeline__release=release, name="build")
        started = wait_for(lambda: [line for line in journal_lines(journal, build.pk) if line[2] == "start"],
                           timeout=60, what="the build to start")
        pid = int(started[0][4])
        time.sleep(2)  # mid-build, a heartbeat or two in
        owner = next(name for name, p in stack.processes.items()
                     if p.pid == pid or str(pid) in _children(p.pid))
        killed_at = time.monotonic()
        if whole_worker:
            stack.kill(owner)
        else:
            os.kill(pid, signal.SIGKILL)  # one pool process; its worker lives on
        second = wait_for(lambda: [line for line in journal_lines(journal, build.pk)
                                   if line[2] == "start" and line[3] == "2"], timeout=90,
                          what="another worker to take the build over")
        took_over_s = time.monotonic() - killed_at
        wait_for(lambda: Release.objects.get(pk=release.pk).status == ReleaseStatus.READY, timeout=build_seconds + 60,
                 what="the release to be ready")
        return {"took_over_s": took_over_s, "journal": journal_lines(journal, build.pk), "second": second,
                "build": Stage.objects.get(pk=build.pk), "logs": stack.logs()}
    finally:
        stack.stop()
        redis.stop()


def _children(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return ""


@pytest.mark.parametrize("whole_worker", [True, False], ids=["whole-worker", "pool-process"])
def test_a_killed_workers_build_is_taken_over_within_30_s_with_shipped_settings(
        tmp_path, environments, service, api_users, whole_worker):
    outcome = kill_mid_build(tmp_path, api_users, whole_worker=whole_worker, build_seconds=12.0)
    print(f"take-over {outcome['took_over_s']:.1f} s after the kill")
    assert outcome["took_over_s"] <= TAKEOVER_GOAL_S, outcome["logs"]
    build = outcome["build"]
    assert (build.status, build.attempt) == (StageStatus.SUCCEEDED, 2)
    # The first attempt never finished; the second did, once.
    assert [line[2:4] for line in outcome["journal"]] == [["start", "1"], ["start", "2"], ["done", "2"]]
    assert build.log_lines.filter(message__contains="taking over attempt 2").exists()
    assert not build.log_lines.filter(message__contains="worker lost").exists()
