"""Live-update latency: prints `live_p50_ms_<N>` and `live_p95_ms_<N>` for N = 1, 50, 200 websocket clients.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate REDIS_URL=redis://127.0.0.1:6379/0 python bench/live_latency.py

The time from a committed state change to its `release.changed` event arriving at each of N websocket clients:
a real uvicorn server (config.asgi:application, 2 worker processes as Procfile runs it on this 2-core machine: the
fan-out to 200 sockets is shared by both cores) on 127.0.0.1, the real Redis channel layer, clients made with the
`websockets` package carrying a logged-in release manager's session cookie. The state change is a pause or resume
of a gray release through releases.services, in this process; the clock starts in an on-commit hook registered
before the service's own (hooks run in order), so it reads the moment of commit. Clients run in this process too,
so both ends use the same clock. 40 changes per N, one at a time; every client must see each change.
The data lives in a throwaway database (<db>_bench_live) that is dropped at the end.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from fleet_page import throwaway_database  # noqa: E402  (sets Django up)

import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

CLIENT_COUNTS = [1, 50, 200]
CHANGES = 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += ":" + db["PASSWORD"]
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def setup_release():
    """rm (release manager), staging with v1.0.0 live and v1.1.0 at 5 %; returns (release id, session cookie)."""
    from django.contrib.auth.models import Group
    from django.test import Client

    from releases.choices import ReleaseStatus as S
    from releases.choices import Role
    from releases.models import AgentService, Environment, GrayPhase
    from releases.services import Actor, release_create, release_promote, release_worker_transition
    from django.contrib.auth import get_user_model

    rm = get_user_model().objects.create_user("bench-rm", password="bench-password")
    rm.groups.add(Group.objects.create(name=Role.RELEASE_MANAGER))
    dev = get_user_model().objects.create_user("bench-dev", password="bench-password")
    dev.groups.add(Group.objects.create(name=Role.DEVELOPER))
    env = Environment.objects.create(name="staging", namespace="agent-staging", position=2)
    for index, weight in enumerate([5, 10, 30, 50, 100]):
        GrayPhase.objects.create(environment=env, position=index, weight=weight)
    AgentService.objects.create(name="agent-infer", image_repository="registry.example.com/agent/agent-core")
    release_id = None
    for tag in ("v1.0.0", "v1.1.0"):
        release = release_create(actor=Actor.of(dev), service="agent-infer", environment="staging", tag=tag,
                                 commit=f"{len(tag) + (tag == 'v1.1.0'):040x}")
        release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                  actor_name="pipeline", action="pipeline.succeeded")
        release_promote(actor=Actor.of(rm), release_id=release.pk)
        release_id = release.pk
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(rm)
    return release_id, client.cookies[settings.SESSION_COOKIE_NAME].value, rm


def start_server(db_name: str):
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(db_name),
           "ROLLGATE_CHANNEL_PREFIX": settings.ROLLGATE_CHANNEL_PREFIX,  # live events: same deployment as us
           "REDIS_URL": settings.REDIS_URL}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--ws-max-queue", "64", "--workers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("uvicorn did not start within 30 s")


def change(release_id: int, rm, pause: bool) -> float:
    """Pause or resume the release; returns the perf_counter reading at commit."""
    from releases.services import Actor, release_pause, release_resume

    committed = {}
    try:
        with transaction.atomic():
            transaction.on_commit(lambda: committed.setdefault("at", time.perf_counter()))
            (release_pause if pause else release_resume)(actor=Actor.of(rm), release_id=release_id)
    finally:
        connection.close()  # this runs in a worker thread: leave no connection behind (the database is dropped)
    return committed["at"]


async def measure(port: int, cookie: str, release_id: int, rm, clients: int) -> list[float]:
    arrivals: list[list[float]] = [[] for _ in range(clients)]
    url = f"ws://127.0.0.1:{port}/ws/live/"
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}

    async def client(index: int, ready: asyncio.Event, counter: list[int]):
        async with websockets.connect(url, origin=f"http://127.0.0.1:{port}", additional_headers=headers,
                                      max_queue=None, open_timeout=30) as socket_:
            hello = json.loads(await socket_.recv())
            assert hello["type"] == "hello", hello
            counter[0] += 1
            if counter[0] == clients:
                ready.set()
            async for raw in socket_:
                received = time.perf_counter()
                event = json.loads(raw)
                if event.get("type") == "release.changed" and event.get("release_id") == release_id:
                    arrivals[index].append(received)

    ready, counter = asyncio.Event(), [0]
    tasks = []
    for index in range(clients):
        tasks.append(asyncio.create_task(client(index, ready, counter)))
        if index % 25 == 24:
            await asyncio.sleep(0.05)  # let the server accept in batches
    await asyncio.wait_for(ready.wait(), timeout=60)
    await asyncio.sleep(0.3)
    latencies = []
    for number in range(CHANGES):
        committed = await asyncio.to_thread(change, release_id, rm, number % 2 == 0)
        deadline = time.monotonic() + 10
        while any(len(a) <= number for a in arrivals):
            if time.monotonic() > deadline:
                raise RuntimeError(f"change {number}: only {sum(len(a) > number for a in arrivals)} of {clients} "
                                   f"clients got the event within 10 s")
            await asyncio.sleep(0.002)
        latencies.extend((a[number] - committed) * 1000 for a in arrivals)
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    with throwaway_database("bench_live") as db_name:
        release_id, cookie, rm = setup_release()
        connection.close()
        server, port = start_server(db_name)
        try:
            for clients in CLIENT_COUNTS:
                latencies = asyncio.run(measure(port, cookie, release_id, rm, clients))
                print(f"live_p50_ms_{clients} {percentile(latencies, 0.50):.1f}", flush=True)
                print(f"live_p95_ms_{clients} {percentile(latencies, 0.95):.1f}", flush=True)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
            connection.close()


if __name__ == "__main__":
    main()
