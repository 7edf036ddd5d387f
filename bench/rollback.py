"""Rollback latency of the demo: prints `rollback_to_stable_s <median>` (and one line per run with --verbose).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rollgate REDIS_URL=redis://127.0.0.1:6379/1 python bench/rollback.py

The time from a canary turning bad to all traffic back on the stable version, as a scheduler sees it. Everything is
real and on 127.0.0.1, as under `make run`: uvicorn (routing table long-poll, trace results), a Celery worker with
beat running the SLA gate every SLA_GATE_INTERVAL_SECONDS (1 s here), a private Prometheus scraping the agents every
1 s, the local deploy target running the demo agents, and the traffic generator (--rate, 200 traces/s by default). The demo SLA policy
of `manage.py demo_setup` applies, plus a per-service override that stops the gate from *advancing* the canary
(evaluation_interval_s 1 h), so it stays at the measured weight; the safety rules are untouched.

Each run: v1.0.0 is live; a new v1.2.N starts healthy and is held at --weight % (10 by default); after the gate has
watched it for a few seconds, its agent is switched at runtime to --profile (`erroring`, ~8 % of traces fail:
PUT /behaviour on the agent). The clock starts at that switch and stops when a RoutingClient, long-polling the
routing table, sees no canary any more (rolled back: weight 0). Runs whose canary ends otherwise are reported.
What dominates is evidence, not plumbing: the gate's sequential test needs ~8 failed canary traces before it may
roll back (false alarms <= 1 % per 10 000 failed traces), so the time scales with 1 / (canary traffic x error rate);
scrape, gate tick and the routing long-poll add ~2 s.
A throwaway database (<db>_bench_rollback) is dropped at the end; every process started here is stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

from fleet_page import throwaway_database  # noqa: E402  (sets Django up)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

SERVICE, ENV = "agent-infer", "staging"


def database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = db.get("USER") or "postgres"
    if db.get("PASSWORD"):
        auth += ":" + db["PASSWORD"]
    return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def wait(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")


def ready_release(tag: str):
    """A release made ready without its build stages (the benchmark measures the gate, not the pipeline)."""
    from django.contrib.auth import get_user_model

    from demo.story import commit_of
    from releases.choices import ReleaseStatus as S
    from releases.services import Actor, release_create, release_worker_transition

    dev = Actor.of(get_user_model().objects.get(username="dev"))
    with transaction.atomic():  # committed as ready: the pipeline has nothing to build
        release = release_create(actor=dev, service=SERVICE, environment=ENV, tag=tag, commit=commit_of(tag))
        release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                  actor_name="bench", action="pipeline.succeeded")
    return release


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--weight", type=int, default=10, choices=[5, 10, 30, 50], help="canary weight held")
    parser.add_argument("--profile", default="erroring", help="what the canary turns into (demo/agent/versions.yaml)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="traces per second of the traffic generator (the demo's 50/s: see docs/PERFORMANCE.md)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the rollback per run")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    import redis

    from demo.prometheus import start_private_prometheus, write_config
    from deploy.targets.local import LocalTarget, read_processes
    from releases.choices import ReleaseStatus as S
    from releases.models import Environment, Release
    from releases.services import Actor, release_promote
    from rollgate_client import RoutingClient
    from sla import services as sla_services
    from tests.e2e.conftest import free_port

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    processes: list[subprocess.Popen] = []
    results, outcomes = [], []
    with throwaway_database("bench_rollback") as db_name, tempfile.TemporaryDirectory(prefix="rollgate-bench-") as tmp:
        tmp = Path(tmp)
        var = tmp / "var"
        call_command("seed_demo", stdout=open(os.devnull, "w"))
        call_command("demo_setup", var_dir=str(var), stdout=open(os.devnull, "w"))
        state_dir = var / "local-target"
        tags = [f"v1.2.{n}" for n in range(1, args.runs + 1)]
        env = Environment.objects.get(name=ENV)
        env.target_settings = {**env.target_settings, "profiles": {tag: "healthy" for tag in tags}}
        env.save(update_fields=["target_settings"])
        system = Actor.system("bench")
        sla_services.policy_version_save(actor=system, environment=ENV, service=SERVICE,
                                         policy={"evaluation_interval_s": 3600},
                                         comment="bench: hold the canary at its weight (no advancing)")
        from django.contrib.auth import get_user_model

        rm = Actor.of(get_user_model().objects.get(username="rm"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        prometheus = start_private_prometheus(
            write_config(tmp / "prometheus.yml", targets_file=state_dir / "targets.json", rollgate_url=url))
        base_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(db_name),
                    "ROLLGATE_CHANNEL_PREFIX": settings.ROLLGATE_CHANNEL_PREFIX,  # events: same deployment as us
                    "REDIS_URL": settings.REDIS_URL, "PROMETHEUS_URL": prometheus.url, "PYTHONUNBUFFERED": "1",
                    "SLA_GATE_INTERVAL_SECONDS": "1", "ROLLGATE_AGENT_TOKEN_FILE": str(var / "demo" / "agent-token")}

        def start(name: str, argv: list[str]) -> None:
            log = open(tmp / f"{name}.log", "wb")
            processes.append(subprocess.Popen(argv, cwd=ROOT, env=base_env, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True))

        try:
            start("web", [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port",
                          str(port), "--no-access-log", "--log-level", "warning"])
            start("worker", [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "celery,gate", "-B", "-s",
                             str(tmp / "beat-schedule"), "--concurrency", "2", "-n", f"bench-{port}@127.0.0.1",
                             "-l", "warning", "--without-gossip", "--without-mingle"])
            start("traffic", [sys.executable, "-m", "demo.traffic", "--rollgate", url, "--state-dir", str(state_dir),
                              "--rate", str(args.rate), "--wait-for-stable", "0", "--report-every", "30"])
            stable = ready_release("v1.0.0")
            release_promote(actor=rm, release_id=stable.pk, comment="bench")
            wait(lambda: Release.objects.filter(pk=stable.pk, status=S.LIVE).exists(), 60, "v1.0.0 live")
            token = open(var / "demo" / "agent-token").read().strip()
            client = RoutingClient(f"{url}/api/routing/{SERVICE}/{ENV}/", default_stable="v1.0.0", service=SERVICE,
                                   environment=ENV, request_headers={"Authorization": f"Bearer {token}"})
            try:
                for tag in tags:
                    canary = ready_release(tag)
                    release_promote(actor=rm, release_id=canary.pk, comment="bench")
                    wait(lambda: Release.objects.filter(pk=canary.pk, status=S.GRAY).exists(), 60, f"{tag} at 5 %")
                    while (current := Release.objects.get(pk=canary.pk).gray_weight) < args.weight:
                        release_promote(actor=rm, release_id=canary.pk, expected_weight=current, comment="bench")
                    client.wait_for_table(lambda t: t.canary_version == tag and t.canary_weight == args.weight, 10)
                    time.sleep(8)  # the gate watches it healthy for a while (its sequential test has a starting point)
                    agent = next(p for p in read_processes(state_dir) if p.version == tag)
                    request = urllib.request.Request(f"{agent.url}/behaviour", method="PUT",
                                                     data=json.dumps({"profile": args.profile}).encode(),
                                                     headers={"Content-Type": "application/json"})
                    turned_bad = time.monotonic()
                    urllib.request.urlopen(request, timeout=5).close()
                    table = client.wait_for_table(lambda t: t.canary_version != tag, args.timeout)
                    seen = time.monotonic() - turned_bad
                    final = Release.objects.get(pk=canary.pk)
                    outcome = f"{final.status}"
                    if table is None:
                        outcome = f"still {final.status} at {final.gray_weight} % after {args.timeout:g} s"
                    else:
                        results.append(seen)
                    outcomes.append((tag, outcome, seen))
                    if args.verbose:
                        print(f"# {tag}: {args.profile} at {args.weight} % -> {outcome} after {seen:.2f} s",
                              flush=True)
                    if final.status in (S.GRAY, S.PAUSED):  # free the canary slot for the next run
                        from releases.services import release_rollback

                        release_rollback(actor=rm, release_id=final.pk, comment="bench: next run")
            finally:
                client.close()
        finally:
            for process in processes:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            LocalTarget(state_dir).stop()
            prometheus.stop()
            redis.Redis.from_url(settings.REDIS_URL).flushdb()
    failed = [o for o in outcomes if o[1] != S.ROLLED_BACK]
    if failed:
        print(f"# runs not ending in a rollback by the gate: {failed}", file=sys.stderr)
    if not results:
        print("rollback_to_stable_s nan")
        return 1
    print(f"rollback_to_stable_s {statistics.median(results):.2f}")
    if args.verbose:
        print(f"# runs: {', '.join(f'{r:.2f}' for r in results)}; profile {args.profile}, canary {args.weight} %, "
              f"{args.rate:g} traces/s, scrape 1 s, gate every 1 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
