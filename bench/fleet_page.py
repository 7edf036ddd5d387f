"""Fleet-scale benchmark (issue 16): pages, lists, exports and the trace scrape at 1 000 and 5 000 services.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate_wt16 REDIS_URL=redis://127.0.0.1:6379/15 \
      .venv/bin/python bench/fleet_page.py                      # --sizes 1000,5000 --releases-per 20 --runs 30

Seeds with `manage.py seed_fleet` (bulk_create) into a database of its own (<db>_bench_scale, dropped at the end),
first the smaller fleet, then adds services up to the larger one. For each size it starts uvicorn with 2 workers
on a free 127.0.0.1 port (config.settings.local, DEBUG off) and times 30 requests per page or endpoint after two
warm-ups, over one keep-alive connection. Prints one `<figure> <value>` line per figure, with a `_<size>` suffix
(e.g. `fleet_p95_ms_1000`) and, for the largest size, the plain names of issue 16 too.

The Redis db given must hold no trace metrics (the scrape part writes and deletes rollgate:traces:*).
"""
from __future__ import annotations

import argparse
import gzip
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402


def out(name: str, value) -> None:
    print(f"{name} {value}", flush=True)


@contextmanager
def throwaway_database(suffix: str):
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database (the benchmark measures the real thing)")
    base = settings.DATABASES["default"]["NAME"]
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{base}_{suffix}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield settings.DATABASES["default"]["NAME"]
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


@contextmanager
def web_server(db_name: str):
    port = free_port()
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db_name}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "0",
           "REDIS_URL": settings.REDIS_URL, "ALLOWED_HOSTS": "127.0.0.1,localhost",
           "SECRET_KEY": settings.SECRET_KEY}  # the same key signs the sessions the bench makes
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning",
                             "--timeout-graceful-shutdown", "3"], cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/health/")
                if conn.getresponse().status in (200, 503):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("uvicorn did not answer within 60 s")
        time.sleep(1.0)  # both workers up
        yield port, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def session_cookie(username: str) -> str:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def timed_gets(port: int, path: str, cookie: str, runs: int) -> tuple[float, float, int]:
    """(median ms, p95 ms, bytes) of `runs` GETs after two warm-ups, on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Cookie": cookie, "Host": "127.0.0.1"}
    size = 0
    timings = []
    for index in range(runs + 2):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        size = len(body)
        if index >= 2:
            timings.append(elapsed)
    conn.close()
    timings.sort()
    return statistics.median(timings), timings[max(0, int(round(0.95 * len(timings))) - 1)], size


def deep_cursor(model, fraction: float, field: str = "created_at") -> str:
    from releases.keyset import Cursor

    total = model.objects.count()
    row = model.objects.order_by(f"-{field}", "-pk").only("pk", field)[int(total * fraction)]
    return Cursor.after(row, field).encode()


def fleet_queries() -> int:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="fleet-rm"))
    client.get("/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def export_audit(port: int, cookie: str, worker_pids: list[int]) -> dict:
    resting = rss_mb(worker_pids)
    peak = [resting]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], rss_mb(worker_pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    started = time.perf_counter()
    conn.request("GET", "/audit/export.csv", headers={"Cookie": cookie, "Host": "127.0.0.1"})
    response = conn.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export: {response.status} {response.read()[:300]!r}")
    first = response.read1(65536)
    first_byte = time.perf_counter() - started
    lines = first.count(b"\n")
    while True:
        chunk = response.read1(1 << 20)
        if not chunk:
            break
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    conn.close()
    done.set()
    sampler.join()
    time.sleep(2)
    after = rss_mb(worker_pids)
    return {"first_byte_s": first_byte, "rows": lines - 1, "rows_per_s": (lines - 1) / elapsed,
            "rss_growth_mb": max(peak[0], after) - resting, "rss_after_mb": after - resting}


def trace_scrape(port: int, services: list[str], per: int) -> tuple[int, int, int]:
    """Two serving versions per service (the live one and the staging canary), plus two retired ones reported
    two hours ago that the scrape must drop. Returns (series kept, bytes, gzip bytes)."""
    import redis

    from rollgate_client import TraceResult
    from routing import metrics

    store = redis.Redis.from_url(settings.REDIS_URL)
    if store.exists(metrics.HASH_KEY):
        sys.exit(f"{settings.REDIS_URL} already holds trace metrics: give the bench a Redis db of its own")
    try:
        now = time.time()
        pipe = store.pipeline(transaction=False)
        for index, name in enumerate(services):
            for version, at in ((f"v1.{per - 2}.0", now), (f"v1.{per - 1}.0", now), (f"v1.{per - 3}.0", now - 7200),
                                (f"v1.{per - 4}.0", now - 7200)):
                results = [TraceResult(trace_id="t", agent_id="a", version=version, ok=True, latency_ms=120.0 + i,
                                       tokens=10, callback_ok=True) for i in range(3)]
                ints, sums = metrics.aggregate(name, "staging", results)
                metrics.record(pipe, ints, sums, at)
            if index % 200 == 0:
                pipe.execute()
        pipe.execute()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("GET", "/metrics/traces", headers={"Host": "127.0.0.1"})
        plain = conn.getresponse().read()
        conn.request("GET", "/metrics/traces", headers={"Host": "127.0.0.1", "Accept-Encoding": "gzip"})
        zipped = conn.getresponse().read()
        conn.close()
        assert gzip.decompress(zipped) == plain
        return plain.count(b"agent_requests_total{") // 2, len(plain), len(zipped)
    finally:
        store.delete(metrics.HASH_KEY, metrics.SEEN_KEY)
        store.close()


def gate_tick(per: int, with_traffic: int) -> tuple[int, float, float]:
    """Every staging canary of the fleet in gray against a real Prometheus that holds 5 minutes of traffic for the
    first `with_traffic` services (canary and stable); the others have no series yet (the gate watches them).
    Returns (releases evaluated, first tick s, second tick s): the first also creates the gate records."""
    from datetime import datetime, timezone

    from releases.models import AgentService
    from sla import services as sla_services
    from tests.sla.prometheus_fakes import OpenMetricsHistory, PrometheusProcess, VersionTraffic

    end = int(time.time()) - 30
    history = OpenMetricsHistory(start=end - 330, end=end, step_s=30)
    for name in AgentService.objects.order_by("name").values_list("name", flat=True)[:with_traffic]:
        history.add(VersionTraffic(name, "staging", f"v1.{per - 2}.0"))
        history.add(VersionTraffic(name, "staging", f"v1.{per - 1}.0"))
    prometheus = PrometheusProcess(targets=[]).prepare()
    try:
        prometheus.backfill(history.text())
        prometheus.start()
        at = datetime.fromtimestamp(end, timezone.utc)
        started = time.perf_counter()
        first = sla_services.gate_run(at=at, prometheus_url=prometheus.url)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        second = sla_services.gate_run(at=at, prometheus_url=prometheus.url)
        second_s = time.perf_counter() - started
        acted = sum(1 for a in first.applied if a.taken)
        print(f"# gate: first tick evaluated {first.evaluated} and acted on {acted} (promoted, paused, rolled back); "
              f"second tick evaluated {second.evaluated}", flush=True)
        return first.evaluated, first_s, second_s
    finally:
        prometheus.stop()


def measure(size: int, per: int, runs: int, db_name: str, largest: bool) -> None:
    from releases.models import AgentService, AuditEvent, Release

    def figure(name: str, value) -> None:
        out(f"{name}_{size}", value)
        if largest:
            out(name, value)

    label = {1000: "1k", 5000: "5k"}.get(size, str(size))
    out(f"fleet_queries_{label}", fleet_queries())
    release_cursor = deep_cursor(Release, 0.9)
    audit_cursor = deep_cursor(AuditEvent, 0.9)
    rm, auditor = session_cookie("fleet-rm"), session_cookie("fleet-auditor")
    with web_server(db_name) as (port, master):
        workers = children(master)
        for name, path, cookie in (
            ("fleet", "/", rm), ("fleet_gray", "/?status=gray", rm),
            ("releases_api", "/api/releases/", rm),
            ("releases_api_deep", f"/api/releases/?cursor={release_cursor}", rm),
            ("audit", "/audit/", auditor), ("audit_deep", f"/audit/?cursor={audit_cursor}", auditor),
            ("approvals", "/approvals/", rm),
        ):
            median, p95, size_bytes = timed_gets(port, path, cookie, runs)
            figure(f"{name}_median_ms", f"{median:.1f}")
            figure(f"{name}_p95_ms", f"{p95:.1f}")
            if name in ("fleet", "approvals"):
                figure(f"{name}_bytes", size_bytes)
        services = list(AgentService.objects.order_by("name").values_list("name", flat=True))
        kept, plain, zipped = trace_scrape(port, services, per)
        figure("metrics_traces_series", kept)
        figure("metrics_traces_bytes", plain)
        figure("metrics_traces_gzip_bytes", zipped)
        export = export_audit(port, auditor, workers)
        figure("audit_csv_rows", export["rows"])
        figure("audit_csv_first_byte_s", f"{export['first_byte_s']:.2f}")
        figure("audit_csv_rows_per_s", f"{export['rows_per_s']:.0f}")
        figure("audit_csv_rss_growth_mb", f"{export['rss_growth_mb']:.1f}")
        figure("audit_csv_rss_after_mb", f"{export['rss_after_mb']:.1f}")
    if largest:
        evaluated, first_s, second_s = gate_tick(per, with_traffic=min(500, size))
        out(f"gate_tick_releases_{size}", evaluated)
        out(f"gate_tick_first_s_{size}", f"{first_s:.1f}")
        out(f"gate_tick_s_{size}", f"{second_s:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000", help="fleet sizes in services, ascending")
    parser.add_argument("--releases-per", type=int, default=20)
    parser.add_argument("--environments", type=int, default=4)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    from django.core.management import call_command

    from releases.models import AgentService, AuditEvent, Release

    with throwaway_database("bench_scale") as db_name:
        seeded = 0
        for size in sizes:
            started = time.monotonic()
            call_command("seed_fleet", services=size - seeded, environments=args.environments,
                         releases_per=args.releases_per, quiet=True)
            seeded = size
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            out(f"seed_s_{size}", f"{time.monotonic() - started:.0f}")
            out(f"releases_{size}", Release.objects.count())
            out(f"audit_events_{size}", AuditEvent.objects.count())
            assert AgentService.objects.count() == size
            measure(size, args.releases_per, args.runs, db_name, largest=size == sizes[-1])


if __name__ == "__main__":
    main()
