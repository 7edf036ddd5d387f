"""The one-command demo's story, end to end, with every real piece `make run` starts (issue 8).

Real PostgreSQL (the pytest test database; transactional, so the other processes see every row), real Redis, a
private Prometheus scraping the agents every second, uvicorn (web), a Celery worker with its beat (the SLA gate
every 2 s, the pipeline stages, the deploy tasks), podman + the local registry for build and push, the local deploy
target running the demo agents, and the traffic generator posting results with its agent token. The story itself
runs as `manage.py demo_story --exit`, exactly as under honcho. Everything started here is stopped at teardown, and
no agent process may be left behind.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from demo.prometheus import start_private_prometheus, write_config
from deploy.targets.local import LocalTarget, process_group_members
from releases.choices import ReleaseStatus
from releases.models import AuditEvent, Release
from rollgate_client import RoutingClient
from sla.models import GateRecord, SlaReport
from tests.e2e.conftest import database_url, free_port

ROOT = Path(__file__).resolve().parents[2]
STORY_TIMEOUT_S = 420  # the story takes 3.5-5 minutes on 2 busy cores; this test's own limit, not pytest.ini's 300 s
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(STORY_TIMEOUT_S + 120)]  # + set-up and teardown of the stack
REGISTRY = "127.0.0.1:5000"
PODMAN_SOCKET = "/run/podman/podman.sock"


def _require_machine():
    problems = []
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=3).raise_for_status()
    except httpx.HTTPError as error:
        problems.append(f"no registry at {REGISTRY} ({error})")
    if not os.path.exists(PODMAN_SOCKET) and not os.environ.get("DOCKER_HOST"):
        problems.append(f"no podman service at {PODMAN_SOCKET}")
    if not os.path.exists("/usr/bin/prometheus"):
        problems.append("no /usr/bin/prometheus")
    if problems:
        pytest.fail("; ".join(problems) + ": run scripts/setup-pipelines.sh and scripts/setup-sla.sh (make test does)")


class Stack:
    """The processes of `make run`, each in its own session so a stop reaches everything it started."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.processes: dict[str, subprocess.Popen] = {}
        self.seen_agent_groups: set[int] = set()
        self._watching = threading.Event()

    def env(self, **extra) -> dict:
        return {**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
                "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(),
                "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1",
                "DOCKER_HOST": os.environ.get("DOCKER_HOST", f"unix://{PODMAN_SOCKET}"),
                **{k: str(v) for k, v in extra.items()}}

    def start(self, name: str, argv: list[str], **extra_env) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        process = subprocess.Popen(argv, cwd=ROOT, env=self.env(**extra_env), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.processes[name] = process
        return process

    def log(self, name: str, tail: int = 6000) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"----- {name}\n{self.log(name, 3000)}" for name in self.processes)

    def watch_agents(self, state_dir: Path) -> None:
        """Remember every agent process group the local target records, to check none survives the stop."""
        def run():
            while not self._watching.wait(0.5):
                try:
                    data = json.loads((state_dir / "state.json").read_text())
                except (OSError, ValueError):
                    continue
                self.seen_agent_groups.update(p["pid"] for p in data.get("processes", []))

        threading.Thread(target=run, daemon=True).start()

    def stop(self) -> None:
        self._watching.set()
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def demo_stack(tmp_path, transactional_db):
    _require_machine()
    # Messages of earlier runs would point at rows this database never had; start from an empty broker.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    var = tmp_path / "var"
    call_command("seed_demo")
    call_command("demo_setup", var_dir=str(var))
    state_dir = var / "local-target"
    stack = Stack(tmp_path)
    prometheus = None
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        config = write_config(tmp_path / "prometheus.yml", targets_file=state_dir / "targets.json", rollgate_url=url)
        prometheus = start_private_prometheus(config, log_path=tmp_path / "prometheus.log")
        gate_env = {"PROMETHEUS_URL": prometheus.url, "SLA_GATE_INTERVAL_SECONDS": 2}
        stack.start("web", [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                            "--port", str(port), "--no-access-log", "--log-level", "warning"], **gate_env)
        stack.start("worker", [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "celery,gate", "-B", "-s",
                               str(tmp_path / "beat-schedule"), "--concurrency", "2", "-n",
                               f"story-{port}@127.0.0.1", "-l", "warning", "--without-gossip", "--without-mingle"],
                     **gate_env)
        stack.start("traffic", [sys.executable, "-m", "demo.traffic", "--rollgate", url, "--state-dir",
                                str(state_dir), "--rate", "100", "--wait-for-stable", "0", "--report-every", "15"],
                    ROLLGATE_AGENT_TOKEN_FILE=var / "demo" / "agent-token")
        stack.start("traffic-prod", [sys.executable, "-m", "demo.traffic", "--rollgate", url, "--state-dir",
                                     str(state_dir), "--env", "prod", "--rate", "100", "--wait-for-stable", "0",
                                     "--report-every", "15"],
                    ROLLGATE_AGENT_TOKEN_FILE=var / "demo" / "agent-token-prod")
        stack.watch_agents(state_dir)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/health/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "web did not answer within 30 s:\n" + stack.log("web")
            time.sleep(0.2)
        yield stack, url, state_dir
    finally:
        stack.stop()
        # What `make run` does on exit: local_agents stops every agent the worker started.
        stopped = LocalTarget(state_dir).stop()
        if prometheus is not None:
            prometheus.stop()
        redis.Redis.from_url(settings.REDIS_URL).flushdb()
        left = {pgid: process_group_members(pgid) for pgid in stack.seen_agent_groups}
        assert stack.seen_agent_groups, "the local target never recorded an agent"
        assert not any(left.values()), f"agent processes left behind: {left} (stopped {stopped})"


def _gate_states() -> str:
    """What the SLA gate holds for each release (a manual review's reason, the last verdict), for a failure."""
    lines = ["----- SLA gate records"]
    for record in GateRecord.objects.select_related("release__version", "release__environment").order_by("pk"):
        release = record.release
        lines.append(f"{release.version.tag} in {release.environment.name} ({release.status}, "
                     f"{release.gray_weight} %): {record.status}/{record.action}; manual review "
                     f"{record.state.get('manual_review')}; last: {(record.last_verdict or {}).get('summary')}")
    return "\n".join(lines)


def _release(tag: str) -> Release:
    return Release.objects.select_related("version").get(version__tag=tag, environment__name="staging")


def test_the_demo_story_ramps_v1_1_0_to_live_and_the_gate_rolls_back_v1_2_0_and_pauses_v1_2_1(demo_stack):
    stack, url, _state_dir = demo_stack
    started = time.monotonic()
    story = stack.start("story", [sys.executable, "manage.py", "demo_story", "--exit", "--url", url,
                                  "--step-timeout", "300"])
    try:
        story.wait(timeout=STORY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the story did not finish within {STORY_TIMEOUT_S} s\n{_gate_states()}\n{stack.logs()}")
    took = time.monotonic() - started
    print(f"demo story took {took:.0f} s\n{stack.log('story', 20000)}")
    assert story.returncode == 0, f"{_gate_states()}\n{stack.logs()}"

    # v1.0.0 went live first and was replaced by v1.1.0, which the gate ramped through every phase.
    v100, v110, v120, v121, v130 = (_release(tag) for tag in ("v1.0.0", "v1.1.0", "v1.2.0", "v1.2.1", "v1.3.0"))
    assert v100.status == ReleaseStatus.SUPERSEDED
    assert (v110.status, v110.gray_weight) == (ReleaseStatus.LIVE, 100)
    gate_steps = [(e.details["from_weight"], e.details["to_weight"]) for e in
                  AuditEvent.objects.filter(release=v110, actor_name="sla-gate", action="release.promote")
                  .order_by("pk")]
    assert gate_steps == [(5, 10), (10, 30), (30, 50), (50, 100)]
    assert v130.status == ReleaseStatus.READY, "v1.3.0 is left for the user to promote"
    # every version carries its commit time, so DORA's lead time (commit -> live) is known for v1.1.0
    assert all(r.version.committed_at is not None and r.version.committed_at < r.created_at
               for r in (v100, v110, v120, v121, v130))

    # v1.2.0 was paused by the SLA gate (design table: an error regression pauses), its report says why in one
    # sentence, and rm rolled it back.
    assert v120.status == ReleaseStatus.ROLLED_BACK and v120.gray_weight == 0
    pause = AuditEvent.objects.get(release=v120, action="release.pause")
    assert pause.actor_name == "sla-gate" and pause.actor is None
    assert pause.reason.startswith("SLA gate: v1.2.0 ") and "ramp paused at" in pause.reason, pause.reason
    assert ("below the 99.00 % floor" in pause.reason or "on v1.1.0" in pause.reason), pause.reason
    rollback = AuditEvent.objects.get(release=v120, action="release.rollback")
    assert rollback.actor_name == "rm" and "the SLA gate paused it" in rollback.reason
    report = SlaReport.objects.filter(release=v120, action="pause").order_by("evaluated_at").first()
    assert report is not None and report.status == "blocked"
    fired = {f["rule"] for f in report.verdict["findings"] if f["fired"] and f["effect"] == "pause"}
    assert fired & {"error_regression_sequential", "success_floor_sequential", "success_rate_floor"}, \
        report.verdict["reasons"]
    assert report.verdict["summary"].startswith("v1.2.0 ") and "ramp paused at" in report.verdict["summary"]
    assert report.error_trace_ratio > 0.02  # the erroring profile fails ~8 % of its traces; stable ~0.05 %

    # v1.2.1 (a cheaper model) answered every request as before, but its answers scored lower: the LLM quality gate
    # paused it on the eval score, said so in words, and it is left paused for the user.
    assert v121.status == ReleaseStatus.PAUSED and v121.gray_weight > 0
    quality_pause = AuditEvent.objects.get(release=v121, action="release.pause")
    assert quality_pause.actor_name == "sla-gate", quality_pause.actor_name
    assert quality_pause.reason.startswith("SLA gate: v1.2.1's answers got worse: mean eval score 0.") and \
        "although its requests still succeed" in quality_pause.reason, quality_pause.reason
    quality_report = SlaReport.objects.filter(release=v121, action="pause").order_by("evaluated_at").first()
    deciding = {f["rule"] for f in quality_report.verdict["findings"]
                if f["fired"] and f["effect"] in ("pause", "block_version", "rollback")}
    assert deciding == {"eval_score_regression"}, quality_report.verdict["reasons"]
    assert quality_report.error_trace_ratio < 0.01  # HTTP success saw nothing wrong
    assert "v1.2.1 is paused at" in stack.log("story", 40000) and "eval score" in stack.log("story", 40000)

    # The same answer over HTTP, in the design document's shape, and the routing table as a scheduler sees it.
    token = httpx.post(f"{url}/api/auth/token/", json={"username": "rm", "password": "rollgate-demo"}).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    answer = httpx.get(f"{url}/monitor/agent-sla-report", params={"version": "v1.2.0"}, headers=headers).json()
    assert (answer["status"], answer["action"]) == ("blocked", "pause")
    assert answer["error_trace_ratio"] > 0.02
    client = RoutingClient(f"{url}/api/routing/agent-infer/staging/", service="agent-infer", environment="staging",
                           request_headers=headers, default_stable="v1.0.0")
    try:
        table = client.wait_for_table(lambda table: True, timeout_s=10)
    finally:
        client.close()
    assert table is not None, f"the routing table could not be read: {client.last_error}"
    assert (table.stable_version, table.canary_version, table.canary_weight) == ("v1.1.0", "v1.2.1",
                                                                                 float(v121.gray_weight))
    # The quality gate's sentence on the release's SLA API and on its page.
    sla = httpx.get(f"{url}/api/releases/{v121.pk}/sla/", headers=headers).json()
    assert "v1.2.1's answers got worse: mean eval score" in sla["summary"], sla["summary"]
    browser = Client()  # the page as rm sees it (rendered here, from the same database)
    browser.force_login(get_user_model().objects.get(username="rm"))
    html = browser.get(f"/releases/{v121.pk}/").content.decode()
    assert "answers got worse: mean eval score" in html and "although its requests still succeed" in html
    # The traffic generator's results reached Rollgate with its agent token (none refused).
    assert "trace results not accepted" not in stack.log("traffic"), stack.log("traffic")

    # The demo plays prod: the versions verified in staging went on with the same image, their unverified scans
    # were overridden by rm, rm and qa approved, and the gate ramped v1.1.0, waiting at 50 % for qa.
    prod_v100, prod_v110 = (Release.objects.select_related("version").get(version__tag=tag, environment__name="prod")
                            for tag in ("v1.0.0", "v1.1.0"))
    assert prod_v100.status == ReleaseStatus.SUPERSEDED and prod_v110.status == ReleaseStatus.LIVE
    for prod_release, staging_release in ((prod_v100, v100), (prod_v110, v110)):
        assert prod_release.version_id == staging_release.version_id
        stages = dict(prod_release.pipelines.get().stages.values_list("name", "status"))
        assert (stages["build"], stages["push"]) == ("skipped", "skipped"), stages
        assert AuditEvent.objects.filter(release=prod_release, action="scan.override", actor_name="rm").exists()
        assert set(prod_release.approvals.filter(step_weight=0).values_list("user__username", flat=True)) == \
            {"rm", "qa"}
    step = prod_v110.approvals.get(step_weight=50)
    assert step.user.username == "qa" and step.evidence["sla"]["previous_environment"]["environment"] == "staging"
    prod_steps = [(e.details["from_weight"], e.details["to_weight"]) for e in
                  AuditEvent.objects.filter(release=prod_v110, actor_name="sla-gate", action="release.promote")
                  .order_by("pk")]
    assert (30, 50) in prod_steps and prod_steps[-1][1] == 100, prod_steps
    promoted_to_50 = AuditEvent.objects.get(release=prod_v110, action="release.promote", details__to_weight=50)
    assert step.created_at <= promoted_to_50.created_at  # the gate moved past 30 % only after qa's approval
    story_log = stack.log("story", 20000)
    assert "waiting for qa's approval to go to 50 %" in story_log, story_log
