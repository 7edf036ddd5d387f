"""The SLA gate keeps evaluating while builds fill every build slot (issue 13): it runs on its own queue, consumed by
its own worker, so an automatic rollback never waits for a build to finish. The builds here take 20 s each and fill
both slots of the build worker; the gate (every second) must not fall behind by more than twice its interval."""
import time

import pytest

from releases.choices import ReleaseStatus
from releases.models import Release
from releases.services import Actor, release_promote
from sla.models import GateRecord
from tests.faults.conftest import TIMED_RUNNERS
from tests.faults.services import PrivateRedis, free_port
from tests.faults.stack import Stack, create_release
from tests.pipelines.conftest import wait_for, worker_database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def gate_gaps(*, tmp_path, make_release, rm, dev, interval_s: float, watch_s: float, build_s: float) -> dict:
    """Two builds on a 2-slot build worker, a canary on the gate; returns the evaluation times seen meanwhile."""
    stable = make_release("v1.0.0")
    release_promote(actor=Actor.of(rm), release_id=stable.pk)
    canary = make_release("v1.1.0")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    assert Release.objects.get(pk=canary.pk).status == ReleaseStatus.GRAY
    redis = PrivateRedis(tmp_path / "redis").start()
    stack = Stack(tmp_path / "logs", database_url=worker_database_url(), redis_url=redis.url,
                  ROLLGATE_PIPELINE_RUNNERS=TIMED_RUNNERS, ROLLGATE_TEST_STAGE_SECONDS="0.1",
                  ROLLGATE_TEST_STAGE_SECONDS_BUILD=build_s, SLA_GATE_INTERVAL_SECONDS=interval_s,
                  PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}")  # nothing answers: every tick still evaluates
    try:
        stack.worker("worker", queues="celery", concurrency=2)
        stack.worker("gate", queues="gate", concurrency=2)
        stack.beat()
        stack.web()  # releases are created through the API, so their work goes to this stack's Redis
        token = stack.token("dev", "pw-dev")
        builds = [Release.objects.get(pk=create_release(stack, token, f"v2.{n}.0", env="test")) for n in range(2)]
        wait_for(lambda: Release.objects.filter(pk__in=[b.pk for b in builds], status=ReleaseStatus.BUILDING)
                 .count() == 2, timeout=30, what="both builds to run")
        seen, last = [], None
        deadline = time.monotonic() + watch_s
        while time.monotonic() < deadline:
            sequence = GateRecord.objects.filter(release=canary).values_list("sequence", flat=True).first()
            if sequence != last:
                seen.append(time.monotonic())
                last = sequence
            time.sleep(0.05)
        building = Release.objects.filter(pk__in=[b.pk for b in builds], status=ReleaseStatus.BUILDING).count()
        return {"seen": seen, "still_building": building, "logs": stack.logs()}
    finally:
        stack.stop()
        redis.stop()


def test_gate_evaluations_continue_while_builds_fill_every_slot(tmp_path, environments, service, make_release, rm,
                                                                 dev):
    interval = 1.0
    outcome = gate_gaps(tmp_path=tmp_path, make_release=make_release, rm=rm, dev=dev, interval_s=interval,
                        watch_s=12.0, build_s=20.0)
    assert outcome["still_building"] == 2  # the whole window was under build load
    seen = outcome["seen"]
    assert len(seen) >= 6, f"only {len(seen)} evaluations in 12 s\n{outcome['logs']}"
    longest = max(b - a for a, b in zip(seen, seen[1:]))
    print(f"{len(seen)} evaluations, longest gap {longest:.2f} s (interval {interval:g} s)")
    assert longest <= 2 * interval, outcome["logs"]
