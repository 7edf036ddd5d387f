"""People pausing and resuming a release while the SLA gate evaluates it, for a bounded time: the gate's
transaction (samples, reports, audit rows, whose foreign-key checks lock the release and the service) and the
people's (service, then release) keep one lock order, so no request deadlocks or answers 500."""
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection

from sla import services
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)
RUN_SECONDS = 6.0


def test_pause_and_resume_against_a_ticking_gate_never_deadlock(canary_of, history_end, rm, rm2):
    release = canary_of("ramp-callback")  # the gate keeps evaluating it (manual review) without moving it
    stop = threading.Event()
    errors: list[str] = []
    answers: dict[int, int] = {}
    ticks = [0]
    lock = threading.Lock()

    def gate():
        try:
            at = history_end
            while not stop.is_set():
                at += timedelta(seconds=1)
                try:
                    services.gate_run(at=at)
                    ticks[0] += 1
                except Exception as error:  # a deadlock surfaces here as OperationalError
                    errors.append(f"gate: {type(error).__name__}: {error}")
                stop.wait(0.2)
        finally:
            connection.close()

    def person(user, path):
        client = client_for(user)
        client.raise_request_exception = False
        try:
            while not stop.is_set():
                response = client.post(f"/api/releases/{release.pk}/{path}/", {"comment": "load"}, format="json")
                with lock:
                    answers[response.status_code] = answers.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    errors.append(f"{path}: HTTP {response.status_code}: {response.content[:300]!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=gate), threading.Thread(target=person, args=(rm, "pause")),
               threading.Thread(target=person, args=(rm2, "resume")), threading.Thread(target=person, args=(rm, "resume"))]
    for thread in threads:
        thread.start()
    time.sleep(RUN_SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert ticks[0] >= 3 and answers.get(200, 0) >= 10, (ticks, answers)
    assert set(answers) <= {200, 409}, answers
