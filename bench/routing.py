"""Gray-routing benchmark: prints one `<figure_name> <value>` line per figure it measures.

    python bench/routing.py

choose_per_s: RoutingClient.choose() calls per second on one core, for a gray release at
30 % with tenant and gray-tag rules present, each call passing tenant, region and headers
(the full rule check and the hash run on most calls).  Trace ids are made before the clock starts.

ingest_per_s: trace results ingested per second end to end: batches of 1000 POSTed over HTTP (keep-alive, a few
client threads) to /api/traces/results of the real ASGI app under uvicorn on 127.0.0.1 (2 worker processes),
each batch validated, aggregated and written to Redis, until INGEST_RESULTS results are in.  Uses the database
and Redis of DATABASE_URL / REDIS_URL (migrates, creates a "bench-routing" service, a version and an agent token,
and removes the token and its metric series afterwards).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rollgate_client import GrayRule, RoutingClient, RoutingTable  # noqa: E402

CALLS_PER_RUN = 200_000
RUNS = 5
INGEST_RESULTS = 200_000
INGEST_BATCH = 1000
INGEST_CLIENT_THREADS = 4
INGEST_WORKERS = 2
ROOT = Path(__file__).resolve().parents[1]


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def measure_choose_per_s() -> float:
    table = RoutingTable(
        service="agent-infer",
        environment="prod",
        revision=1,
        stable_version="v3.3.0",
        canary_version="v3.3.1",
        canary_weight=30,
        gray_rules=(GrayRule(tenants=["acme", "initech"]), GrayRule(gray_tags=["gray-phase-A"])),
    )
    client = RoutingClient(None, initial_table=table)
    rng = random.Random(7)
    trace_ids = ["%032x" % rng.getrandbits(128) for _ in range(CALLS_PER_RUN)]
    tenants = [rng.choice(["globex", "umbrella", "hooli", "acme"]) for _ in range(CALLS_PER_RUN)]
    headers = {"x-request-id": "r-1"}
    choose = client.choose
    rates = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for trace_id, tenant in zip(trace_ids, tenants):
            choose(trace_id, tenant, "cn-bj", headers)
        rates.append(CALLS_PER_RUN / (time.perf_counter() - started))
    client.close()
    return statistics.median(rates)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ingest_fixture() -> tuple[str, int, str]:
    """(agent key, token id) for bench-routing in the first environment, creating what is missing."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from releases.models import AgentService, Environment, Version
    from routing import auth

    service, _ = AgentService.objects.get_or_create(name="bench-routing",
                                                    defaults={"image_repository": "127.0.0.1:5000/bench/routing"})
    environment = Environment.objects.order_by("position").first()
    if environment is None:
        environment = Environment.objects.create(name="dev", namespace="agent-dev", position=0)
    for tag in ("v1.0.0", "v1.1.0"):
        Version.objects.get_or_create(service=service, tag=tag,
                                      defaults={"kind": "release", "commit_sha": f"{tag[1]:0>40}"})
    token, key = auth.token_create(name="bench-routing", environment=environment, service=service)
    return key, token.pk, environment.name


def measure_ingest_per_s() -> float:
    key, token_id, environment = _ingest_fixture()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(INGEST_WORKERS), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=os.environ.copy(),
    )
    path = f"/api/traces/results?service=bench-routing&environment={environment}"
    rng = random.Random(11)
    batch = [
        {"trace_id": "%032x" % rng.getrandbits(128), "agent_id": f"agent-{i % 8}",
         "version": "v1.1.0" if i % 10 < 3 else "v1.0.0", "ok": rng.random() > 0.01,
         "latency_ms": round(rng.lognormvariate(6.5, 0.6), 1), "callback_ok": rng.random() > 0.005,
         "tokens": rng.randrange(200, 3000)}
        for i in range(INGEST_BATCH)
    ]
    body = json.dumps(batch, separators=(",", ":")).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until every worker answers
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                answer = json.loads(response.read())
                connection.close()
                if response.status != 200 or answer["accepted"] != INGEST_BATCH:
                    raise SystemExit(f"ingest warm-up failed: HTTP {response.status} {answer}")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("uvicorn did not start within 30 s")
                time.sleep(0.2)

        batches = INGEST_RESULTS // INGEST_BATCH
        remaining = [batches]
        lock = threading.Lock()
        failures: list[str] = []

        def sender() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while True:
                with lock:
                    if remaining[0] <= 0 or failures:
                        break
                    remaining[0] -= 1
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.status != 200:
                    failures.append(f"HTTP {response.status}: {data[:200]!r}")
            connection.close()

        threads = [threading.Thread(target=sender) for _ in range(INGEST_CLIENT_THREADS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        elapsed = time.perf_counter() - started
        if failures:
            raise SystemExit(f"ingest failed: {failures[0]}")
        return batches * INGEST_BATCH / elapsed
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        _ingest_cleanup(token_id)


def _ingest_cleanup(token_id: int) -> None:
    import redis
    from django.conf import settings

    from routing import auth, metrics
    from routing.models import AgentToken

    auth.token_revoke(token_id=token_id)
    AgentToken.objects.filter(pk=token_id).delete()
    client = redis.Redis.from_url(settings.REDIS_URL)
    fields = [f for f in client.hkeys(metrics.HASH_KEY) if f.split(metrics.SEP.encode())[1:2] == [b"bench-routing"]]
    if fields:
        client.hdel(metrics.HASH_KEY, *fields)
    client.close()


def main() -> None:
    figures = {}
    if "--choose-only" not in sys.argv:
        figures["ingest_per_s"] = measure_ingest_per_s()  # before pinning: uvicorn's workers would inherit it
    pin_to_one_core()
    figures["choose_per_s"] = measure_choose_per_s()
    for name, value in figures.items():
        print(f"{name} {value:.0f}")


if __name__ == "__main__":
    main()
