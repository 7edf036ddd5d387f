"""Two Celery beats never both schedule: the second stands by until the first stops renewing its Redis lease
(config/beat_lock.py), then takes over. Real `celery beat` processes on the test Redis, the SLA gate's 1 s tick."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from config.beat_lock import check
from tests.monitoring import wait_until

ROOT = Path(__file__).resolve().parent.parent
SENT = "Sending due task"


class Beat:
    def __init__(self, name: str, tmp: Path):
        self.log_path = tmp / f"{name}.log"
        self.state = tmp / f"{name}.state"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "SLA_GATE_INTERVAL_SECONDS": "1",
               "ROLLGATE_BEAT_LEASE_SECONDS": "3", "ROLLGATE_BEAT_STATE_FILE": str(self.state),
               "CELERY_TASK_DEFAULT_QUEUE": "w17-beat-lock-test", "PYTHONUNBUFFERED": "1",
               "ROLLGATE_LOG_FORMAT": "console"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", str(tmp / f"{name}-schedule")],
            cwd=ROOT, env=env, stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sent(self) -> int:
        return self.log().count(SENT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture
def clean_lease():
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = f"{settings.ROLLGATE_CHANNEL_PREFIX}:beat-lease"
    client.delete(key, "w17-beat-lock-test")
    yield
    client.delete(key, "w17-beat-lock-test")


def test_a_second_beat_stands_by_and_takes_over_when_the_first_stops(tmp_path, clean_lease):
    first = Beat("first", tmp_path)
    second = None
    try:
        wait_until(lambda: first.sent() >= 2, timeout_s=40, what=lambda: f"first beat scheduling: {first.log()[-2000:]}")
        second = Beat("second", tmp_path)
        wait_until(lambda: "standing by" in second.log(), timeout_s=40,
                   what=lambda: f"second beat standing by: {second.log()[-2000:]}")
        before = first.sent()
        time.sleep(4)
        assert second.sent() == 0 and first.sent() >= before + 2  # only the holder schedules
        assert second.state.read_text().startswith("standby") and first.state.read_text().startswith("holder")
        first.stop()
        wait_until(lambda: second.sent() >= 2, timeout_s=30,
                   what=lambda: f"second beat taking over: {second.log()[-2000:]}")
        assert second.state.read_text().startswith("holder")
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_health_check_reads_the_state_file(tmp_path, monkeypatch):
    import config.beat_lock as beat_lock

    monkeypatch.setattr(beat_lock, "STATE_FILE", tmp_path / "state")
    assert check() == 1  # never started
    (tmp_path / "state").write_text(f"holder {time.time():.0f}\n")
    assert check() == 0
    (tmp_path / "state").write_text(f"holder {time.time() - 600:.0f}\n")
    assert check() == 1  # stale: the beat stopped renewing


def test_a_lease_lost_in_a_redis_restart_is_taken_back_and_a_stolen_one_stops_the_beat(tmp_path, clean_lease):
    client = redis.Redis.from_url(settings.REDIS_URL)
    key = f"{settings.ROLLGATE_CHANNEL_PREFIX}:beat-lease"
    beat = Beat("holder", tmp_path)
    try:
        wait_until(lambda: beat.sent() >= 1, timeout_s=40, what=lambda: f"beat scheduling: {beat.log()[-2000:]}")
        client.delete(key)  # what a Redis restart without persistence does
        wait_until(lambda: client.get(key) is not None, timeout_s=10, what="the lease taken back")
        assert beat.process.poll() is None and client.get(key).decode().endswith(client.get(key).decode()[-8:])
        client.set(key, "another-beat:1:deadbeef", px=30_000)  # another beat got it
        wait_until(lambda: beat.process.poll() is not None, timeout_s=10, what="the beat stopping")
        assert beat.process.returncode == 3 and "another beat holds the lease" in beat.log()
    finally:
        beat.stop()
