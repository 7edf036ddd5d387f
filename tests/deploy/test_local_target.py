"""The local deploy target: real agent processes on 127.0.0.1, checked through /proc and their HTTP endpoints."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from deploy.drivers import driver_for
from deploy.targets.base import DeployOutcome, Revision, TargetError
from deploy.targets.local import REPO_ROOT, LocalTarget, _proc_stat, process_group_members, read_processes
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.services import Actor, release_promote, release_rollback, release_rollout_finished

SERVICE, ENV = "agent-infer", "staging"


def healthz(process) -> dict:
    with urllib.request.urlopen(process.url + "/healthz", timeout=2) as answer:
        return json.loads(answer.read())


def group_pids(pgid: int) -> set[int]:
    return set(process_group_members(pgid))


def assert_gone(pids) -> None:
    deadline = time.monotonic() + 3
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if (stat := _proc_stat(pid)) is not None and stat[0] != "Z"}
        time.sleep(0.05)
    assert not alive, f"processes still running: {alive}"


@pytest.fixture
def target(tmp_path):
    lines = []
    target = LocalTarget(tmp_path / "local-target", log=lines.append, startup_timeout_s=20)
    target.lines = lines
    yield target
    target.stop()


def test_start_runs_the_version_and_reports_it_healthy(target):
    process, started = target.start(SERVICE, ENV, "v1.0.0")
    assert started
    result = target.wait_healthy(process)
    assert result.ok and result.reason == "Complete"
    assert healthz(process)["version"] == "v1.0.0"
    assert target.health(process) == (True, "HTTP 200")
    again, started_again = target.start(SERVICE, ENV, "v1.0.0")
    assert not started_again and again.pid == process.pid


def test_stable_and_canary_run_side_by_side_on_their_own_ports(target):
    stable, _ = target.start(SERVICE, ENV, "v1.0.0", track="stable")
    canary, _ = target.start(SERVICE, ENV, "v1.1.0", track="canary")
    assert target.wait_healthy(stable).ok and target.wait_healthy(canary).ok
    assert stable.port != canary.port
    assert (healthz(stable)["version"], healthz(canary)["version"]) == ("v1.0.0", "v1.1.0")
    sd = json.loads((target.state_dir / "targets.json").read_text())
    assert sorted((t["labels"]["version"], t["labels"]["track"], t["targets"][0]) for t in sd) == [
        ("v1.0.0", "stable", f"127.0.0.1:{stable.port}"), ("v1.1.0", "canary", f"127.0.0.1:{canary.port}")]


def test_go_live_stops_the_old_stable(target):
    old, _ = target.start(SERVICE, ENV, "v1.0.0", track="stable")
    new, _ = target.start(SERVICE, ENV, "v1.1.0", track="canary")
    assert target.wait_healthy(old).ok
    old_pids = group_pids(old.pid)
    assert len(old_pids) == 2, "supervisor and agent"
    assert target.go_live(SERVICE, ENV, "v1.1.0") == ["v1.0.0"]
    assert_gone(old_pids)
    [only] = target.processes(SERVICE, ENV)
    assert (only.version, only.track, only.pid) == ("v1.1.0", "stable", new.pid)
    assert healthz(only)["version"] == "v1.1.0"


def test_rolling_back_a_canary_stops_it_and_leaves_the_stable(target):
    stable, _ = target.start(SERVICE, ENV, "v1.0.0")
    canary, _ = target.start(SERVICE, ENV, "v1.2.0", track="canary")
    assert target.wait_healthy(canary).ok
    canary_pids = group_pids(canary.pid)
    target.roll_back(SERVICE, ENV, "v1.2.0", restore="v1.0.0")
    assert_gone(canary_pids)
    [only] = target.processes(SERVICE, ENV)
    assert (only.version, only.pid) == ("v1.0.0", stable.pid)


def test_rolling_back_a_live_version_restores_the_previous_one(target):
    live, _ = target.start(SERVICE, ENV, "v1.1.0")
    assert target.wait_healthy(live).ok
    live_pids = group_pids(live.pid)
    target.roll_back(SERVICE, ENV, "v1.1.0", restore="v1.0.0")
    assert_gone(live_pids)
    [restored] = target.processes(SERVICE, ENV)
    assert (restored.version, restored.track) == ("v1.0.0", "stable")
    assert healthz(restored)["version"] == "v1.0.0"


def test_stop_leaves_no_process_behind(target):
    processes = [target.start(SERVICE, ENV, version)[0] for version in ("v1.0.0", "v1.1.0")]
    for process in processes:
        assert target.wait_healthy(process).ok
    pids = set().union(*(group_pids(p.pid) for p in processes))
    assert len(pids) == 4
    assert sorted(target.stop()) == ["v1.0.0", "v1.1.0"]
    assert_gone(pids)
    assert not any(process_group_members(p.pid) for p in processes)
    assert read_processes(target.state_dir) == []
    assert json.loads((target.state_dir / "targets.json").read_text()) == []


def test_a_process_that_ignores_sigterm_is_killed_after_the_bounded_wait(tmp_path):
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                      "print('ready', flush=True); time.sleep(60)"]
    target = LocalTarget(tmp_path, command=stubborn, stop_timeout_s=0.5, log=lambda line: None)
    process, _ = target.start(SERVICE, ENV, "v1.0.0")
    time.sleep(0.3)  # let it install the handler
    started = time.monotonic()
    target.stop()
    assert time.monotonic() - started < 3
    assert_gone([process.pid])


def test_a_new_target_object_stops_processes_another_process_started(tmp_path):
    """A restarted worker finds the processes through the state file and stops them."""
    state_dir = tmp_path / "lt"
    subprocess.run([sys.executable, "-m", "deploy.targets.local", "--state-dir", str(state_dir), "start", SERVICE,
                    ENV, "v1.0.0"], cwd=REPO_ROOT, check=True, capture_output=True, timeout=60)
    [recorded] = read_processes(state_dir)
    pids = group_pids(recorded.pid)
    assert pids, "the CLI exited but the agent must keep running"
    LocalTarget(state_dir, log=lambda line: None).stop()
    assert_gone(pids)


def test_a_reused_pid_is_never_signalled(tmp_path):
    target = LocalTarget(tmp_path, log=lambda line: None)
    process, _ = target.start(SERVICE, ENV, "v1.0.0")
    pids = group_pids(process.pid)
    state = json.loads((tmp_path / "state.json").read_text())
    state["processes"][0]["start_ticks"] += 1  # as if the pid now belonged to another program
    (tmp_path / "state.json").write_text(json.dumps(state))
    target.stop()
    assert group_pids(process.pid) == pids
    os.killpg(process.pid, 15)
    assert_gone(pids)


def test_a_version_that_exits_at_once_is_reported_with_its_log(tmp_path):
    target = LocalTarget(tmp_path, command=[sys.executable, "-c", "import sys; print('no model weights'); "
                                                                  "sys.exit(3)"], log=lambda line: None)
    process, _ = target.start(SERVICE, ENV, "v1.0.0")
    result = target.wait_healthy(process, timeout_s=10)
    assert (result.ok, result.reason) == (False, "CrashLoopBackOff")
    assert "no model weights" in result.diagnostics


def test_an_unhealthy_version_fails_its_probe_and_set_weight_refuses_it(target):
    target.profiles["v1.2.0"] = "broken"
    process, _ = target.start(SERVICE, ENV, "v1.2.0", track="canary")
    result = target.wait_healthy(process, timeout_s=3)
    assert (result.ok, result.reason) == (False, "ProbeFailing")
    assert "HTTP 503" in result.message
    with pytest.raises(TargetError, match="not healthy: HTTP 503"):
        target.set_weight(SERVICE, ENV, "v1.2.0", 5)


def test_set_weight_is_a_health_checked_log_line(target):
    target.start(SERVICE, ENV, "v1.0.0")
    canary, _ = target.start(SERVICE, ENV, "v1.1.0", track="canary")
    assert target.wait_healthy(canary).ok
    pids_before = {p.version: p.pid for p in target.processes()}
    target.set_weight(SERVICE, ENV, "v1.1.0", 30)
    assert {p.version: p.pid for p in target.processes()} == pids_before
    assert any("v1.1.0 in staging at 30 %" in line for line in target.lines)


def test_deploy_target_interface_applies_and_watches_a_revision(target):
    revision = Revision(service=SERVICE, env=ENV, namespace="agent-staging", image_tag="v1.1.0", track="canary")
    assert target.apply(revision).changed
    assert target.watch_rollout(revision).ok
    assert not target.apply(revision).changed
    assert target.scale_down_idle(SERVICE, ENV).scaled
    assert target.processes() == []


# --- the driver: releases -> processes ----------------------------------------------------------------------------

@pytest.fixture
def local_staging(environments, tmp_path):
    env = environments["staging"]
    env.deploy_target = DeployTargetKind.LOCAL
    env.target_settings = {"state_dir": str(tmp_path / "lt"), "startup_timeout_s": 20,
                           "profiles": {"v1.2.0": "broken"}}
    env.save()
    yield env
    LocalTarget(tmp_path / "lt", log=lambda line: None).stop()


def running_versions(env) -> dict[str, str]:
    return {p.version: p.track for p in read_processes(env.target_settings["state_dir"]) if p.alive}


def deploy(driver, release, rm, log) -> DeployOutcome:
    """What the pipeline's deploy stage does for a local environment: promote -> deploying, roll out, report."""
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.DEPLOYING
    outcome = driver.rollout(release_id=release.pk, log=log.append)
    release_rollout_finished(release_id=release.pk, succeeded=outcome.status == "deployed",
                             reason=outcome.rollout.message)
    release.refresh_from_db()
    return outcome


def test_driver_plays_a_release_through_canary_live_failed_rollout_and_live_rollback(local_staging, make_release,
                                                                                     rm):
    log = []
    driver = driver_for("local")
    first = make_release("v1.0.0")
    assert deploy(driver, first, rm, log).status == "deployed"
    assert first.status == ReleaseStatus.LIVE, "nothing was live: the first release goes live directly"
    assert running_versions(local_staging) == {"v1.0.0": "stable"}

    canary = make_release("v1.1.0")
    assert deploy(driver, canary, rm, log).status == "deployed"
    assert (canary.status, canary.gray_weight) == (ReleaseStatus.GRAY, 5)
    assert running_versions(local_staging) == {"v1.0.0": "stable", "v1.1.0": "canary"}
    driver.set_weight(release_id=canary.pk, weight=5, log=log.append)
    release_promote(actor=Actor.of(rm), release_id=canary.pk, full=True, expected_weight=5)
    canary.refresh_from_db()
    assert canary.status == ReleaseStatus.LIVE
    driver.go_live(release_id=canary.pk, log=log.append)
    assert running_versions(local_staging) == {"v1.1.0": "stable"}

    local_staging.target_settings["startup_timeout_s"] = 2
    local_staging.save()
    faulty = make_release("v1.2.0")  # the "broken" profile: never healthy
    outcome = deploy(driver, faulty, rm, log)
    assert (outcome.status, outcome.rollout.reason, faulty.status) == ("rolled_back", "ProbeFailing",
                                                                       ReleaseStatus.FAILED)
    assert running_versions(local_staging) == {"v1.1.0": "stable"}

    release_rollback(actor=Actor.of(rm), release_id=canary.pk)
    driver.roll_back(release_id=canary.pk, log=log.append)
    assert running_versions(local_staging) == {"v1.0.0": "stable"}


def test_local_agents_command_starts_the_live_version_and_stop_leaves_nothing(local_staging, make_release, rm):
    """What `make run` relies on: the command starts the live version, and stopping leaves nothing running."""
    from django.core.management import call_command

    first = make_release("v1.0.0")
    release_promote(actor=Actor.of(rm), release_id=first.pk)
    release_rollout_finished(release_id=first.pk, succeeded=True)  # live, but no process yet (e.g. after a reboot)
    call_command("local_agents", "--once")
    [process] = read_processes(local_staging.target_settings["state_dir"])
    assert (process.version, process.track) == ("v1.0.0", "stable") and process.alive
    pids = group_pids(process.pid)
    call_command("local_agents", "--stop")
    assert_gone(pids)


def test_a_version_is_recorded_before_it_starts_so_a_starter_that_dies_midway_loses_nothing(tmp_path, monkeypatch):
    """The worker is killed right after the process was spawned, before the pid was recorded: the next reader
    finds the process by the launch token recorded first, and stopping the version stops it."""
    from deploy.targets import local

    state_dir = tmp_path / "local-target"
    dying = LocalTarget(state_dir, startup_timeout_s=20)
    real_popen = subprocess.Popen
    spawned = []

    def popen_then_die(*args, **kwargs):
        spawned.append(real_popen(*args, **kwargs))
        raise KeyboardInterrupt("worker killed after the spawn")  # nothing after this line runs

    monkeypatch.setattr(local.subprocess, "Popen", popen_then_die)
    with pytest.raises(KeyboardInterrupt):
        dying.start(SERVICE, ENV, "v9.0.0")
    monkeypatch.setattr(local.subprocess, "Popen", real_popen)
    child = spawned[0]
    recorded = json.loads((state_dir / "state.json").read_text())["processes"]
    assert [(p["version"], p["pid"]) for p in recorded] == [("v9.0.0", 0)] and recorded[0]["launch_token"]
    assert read_processes(state_dir) == []  # lock-free readers (traffic, Prometheus) skip it: no pid yet

    survivor = LocalTarget(state_dir, startup_timeout_s=20)
    # The child is adopted by the launch token in its environment, readable once it has exec'd: a reader a moment
    # after the spawn (bounded wait; on a loaded machine the exec can take a little while).
    deadline = time.monotonic() + 10
    found = survivor.find(SERVICE, ENV, "v9.0.0")
    while found is None and time.monotonic() < deadline:
        time.sleep(0.1)
        found = survivor.find(SERVICE, ENV, "v9.0.0")
    assert found is not None and found.pid == child.pid
    assert survivor.stop(SERVICE, ENV, "v9.0.0") == ["v9.0.0"]
    child.wait(timeout=10)
    assert_gone(group_pids(child.pid) | {child.pid})


def test_an_entry_that_never_started_is_dropped_and_never_signalled(tmp_path):
    """A starter that died before spawning leaves an entry without a pid: it is forgotten, and stopping it must
    not signal process group 0 (that is the caller's own group)."""
    state_dir = tmp_path / "local-target"
    state_dir.mkdir()
    (state_dir / "state.json").write_text(json.dumps({"processes": [{
        "service": SERVICE, "env": ENV, "version": "v9.9.9", "track": "stable", "pid": 0, "port": 1,
        "start_ticks": 0, "started_at": 0.0, "log_path": "", "launch_token": "never-started"}]}))
    target = LocalTarget(state_dir)
    assert target.stop(SERVICE, ENV) == []
    assert json.loads((state_dir / "state.json").read_text())["processes"] == []
