"""Redis restarts with releases in flight (issue 13): nothing is lost for good. Web, worker, gate worker and beat run
as real processes on a Redis of their own, which the test kills or stops and starts again while releases are being
created through the API; every release must end ready, none stuck.

The sweeper delays are shortened (redrive after 5 s) so the test takes a minute, not the shipped 30 s per round;
the take-over test (test_worker_kill.py) uses the shipped settings.
"""
import time

import httpx
import pytest

from releases.choices import ReleaseStatus
from releases.models import Release
from tests.conftest import sha
from tests.faults.conftest import TIMED_RUNNERS
from tests.faults.services import PrivateRedis
from tests.faults.stack import Stack
from tests.pipelines.conftest import worker_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FAST_SWEEP = {"ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS": 4, "ROLLGATE_SWEEP_INTERVAL_SECONDS": 2, "ROLLGATE_REDRIVE_AFTER_SECONDS": 5,
              "ROLLGATE_REDRIVE_MAX_BACKOFF_SECONDS": 10}


def create(stack: Stack, token: str, tag: str) -> httpx.Response:
    return stack.post(token, "/api/releases/", {"service": "agent-infer", "environment": "staging", "tag": tag,
                                                 "commit": sha()})


@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence-killed", "append-only-restarted"])
def test_no_release_is_stuck_after_a_redis_restart(appendonly, tmp_path, environments, service, api_users):
    redis = PrivateRedis(tmp_path / "redis", appendonly=appendonly).start()
    stack = Stack(tmp_path / "logs", database_url=worker_database_url(), redis_url=redis.url,
                  ROLLGATE_PIPELINE_RUNNERS=TIMED_RUNNERS, ROLLGATE_TEST_STAGE_SECONDS="0.4", **FAST_SWEEP)
    try:
        stack.web()
        stack.worker("worker", queues="celery")
        stack.worker("gate", queues="gate")
        stack.beat()
        token = stack.token("dev", "pw-dev")
        answers = [create(stack, token, f"v1.{n}.0") for n in range(8)]  # in flight when Redis goes
        down_answers = []

        def create_while_down():
            down_answers.extend(create(stack, token, f"v2.{n}.0") for n in range(4))

        # Without persistence: killed, everything it held is gone. With the append-only file: a clean restart that
        # keeps the queues, but the messages workers held unacknowledged come back only after the visibility
        # timeout (an hour): without the sweeper those releases would wait that long.
        redis.restart(graceful=appendonly, while_down=create_while_down, down_s=1.0)
        answers += [create(stack, token, f"v3.{n}.0") for n in range(8)]
        # The API answered every create while Redis was down: the release is stored, its work found later.
        assert [a.status_code for a in answers + down_answers] == [201] * 20, [a.text for a in answers + down_answers]
        ids = [a.json()["id"] for a in answers + down_answers]

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stack.assert_running()
            statuses = dict(Release.objects.filter(pk__in=ids).values_list("pk", "status"))
            if all(status == ReleaseStatus.READY for status in statuses.values()):
                break
            time.sleep(0.5)
        stuck = {pk: status for pk, status in statuses.items() if status != ReleaseStatus.READY}
        assert stuck == {}, f"stuck after the Redis restart: {stuck}\n{stack.logs()}"
    finally:
        stack.stop()
        redis.stop()
