"""The ``local`` deploy target: each version of an agent service runs as a local process group on 127.0.0.1.

Stable and canary run side by side, each on its own free port. Rollgate does not proxy traffic: the scheduler
(demo/traffic.py in the demo) reads the routing table and sends each trace to the chosen version's port, so
moving the gray weight changes no process here (``set_weight`` only logs and health-checks the canary).

What survives a restart of the worker is in ``state_dir`` (``var/local-target/`` by default):

  state.json    every process this target started: service, env, version, track, pid (= process group id),
                port, the kernel's start time of the pid (so a reused pid is never killed), log file
  targets.json  Prometheus file_sd targets, one per running version, labelled service/env/version/track
  logs/         one log file per version (stdout and stderr of the agent)
  state.lock    flock that serialises changes between processes (web, worker, CLI)

Each version is started in its own session (``start_new_session``), so the version and everything it spawned
(the demo agent's supervisor and its child) form one process group. Stopping sends SIGTERM to the group, waits
up to ``stop_timeout_s``, then SIGKILLs what is left: no orphan survives. The listening socket is bound here
and handed to the process (``--listen-fd``), so no other program can take the port between choosing and
binding it, and the port stays the same across crash restarts.

No Django here: the driver in ``deploy/drivers/local.py`` maps releases onto these calls, and the command
line (``python -m deploy.targets.local status|start|stop``) works without a database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator, Sequence

from deploy.targets.base import (
    TRACK_CANARY,
    TRACK_STABLE,
    ApplyResult,
    BlueGreenSwitch,
    Colour,
    DeployTarget,
    LogFn,
    ObjectChange,
    Revision,
    RolloutResult,
    ScaleDownResult,
    TargetError,
    TrafficResult,
)

logger = logging.getLogger("rollgate.local_target")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / "var" / "local-target"
STATE_FILE = "state.json"
TARGETS_FILE = "targets.json"
LOCK_FILE = "state.lock"
HOST = "127.0.0.1"
# Only these variables reach the agents: nothing of Rollgate's own environment (database URL, secrets). The agent
# token is passed as a file path, so agents can register with Rollgate's agent registry.
LAUNCH_TOKEN_VAR = "ROLLGATE_LAUNCH_TOKEN"
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "ROLLGATE_URL", "ROLLGATE_AGENT_TOKEN_FILE")


def agent_command(*, python: str = sys.executable, config: str | None = None) -> list[str]:
    """The demo agent, supervised (restarted after a crash), on the socket this target binds."""
    command = [python, "-m", "demo.agent", "--supervise", "--service", "{service}", "--env", "{env}",
               "--version", "{version}", "--listen-fd", "{listen_fd}"]
    if config:
        command += ["--config", config]
    return command


@dataclasses.dataclass
class AgentProcess:
    service: str
    env: str
    version: str
    track: str
    pid: int  # also the process group id: each version is a session leader
    port: int
    start_ticks: int  # /proc/<pid>/stat field 22: with the pid, identifies the process across pid reuse
    started_at: float
    log_path: str
    # Recorded before the process is started and passed to it (ROLLGATE_LAUNCH_TOKEN): a starter that dies between
    # the spawn and recording the pid leaves an entry whose process is found again by this token.
    launch_token: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.service, self.env, self.version)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.pid > 0 and bool(process_group_members(self.pid)) and _leader_is_ours(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AgentProcess":
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls) if field.name in data})


# --- /proc ------------------------------------------------------------------------------------------------------

def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of a pid, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            raw = stat.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[19])


def process_group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    if pgid <= 0:
        return []  # 0 is "no process yet" here; to the kernel it would mean our own group
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is not None and stat[1] == pgid and stat[0] != "Z":
            members.append(int(entry))
    return members


def _find_launched(token: str) -> int | None:
    """The process group started with this launch token, or None when no process carries it."""
    needle = f"{LAUNCH_TOKEN_VAR}={token}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle not in environ.read().split(b"\0"):
                    continue
        except OSError:
            continue
        stat = _proc_stat(int(entry))
        if stat is not None and stat[0] != "Z":
            return stat[1]
    return None


def _leader_is_ours(process: AgentProcess) -> bool:
    """False when the pid now belongs to an unrelated process (the leader died and the pid was reused)."""
    stat = _proc_stat(process.pid)
    return stat is None or stat[0] == "Z" or stat[2] == process.start_ticks


def free_listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _read_entries(state_dir: Path | str) -> list[AgentProcess]:
    path = Path(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    return [AgentProcess.from_dict(item) for item in data.get("processes", [])]


def read_processes(state_dir: Path | str = DEFAULT_STATE_DIR) -> list[AgentProcess]:
    """The recorded processes, without locking (files are replaced atomically): for readers such as the
    traffic generator that only need ports."""
    # An entry still without a pid is a start in progress (or one whose starter died): nothing to talk to yet.
    return [p for p in _read_entries(state_dir) if p.pid > 0]


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


# --- the target -------------------------------------------------------------------------------------------------

class LocalTarget(DeployTarget):
    """Local processes as a deploy target. Thread-safe within a process; flock-serialised across processes."""

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        command: Sequence[str] | None = None,
        profiles: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        cwd: Path | str = REPO_ROOT,
        health_path: str = "/healthz",
        health_timeout_s: float = 1.0,
        startup_timeout_s: float = 20.0,
        stop_timeout_s: float = 5.0,
        log: LogFn | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.command = list(command or agent_command())
        self.profiles = dict(profiles or {})
        self.extra_env = dict(extra_env or {})
        self.cwd = Path(cwd)
        self.health_path = health_path
        self.health_timeout_s = health_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._log = log or logger.info
        self._children: dict[int, subprocess.Popen] = {}  # processes started by this object, to reap
        (self.state_dir / "logs").mkdir(parents=True, exist_ok=True)

    # -- state -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _state(self) -> Iterator[list[AgentProcess]]:
        """Load the state under the lock; whatever the caller leaves in the list is saved."""
        with open(self.state_dir / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    processes = _read_entries(self.state_dir)
                except (ValueError, KeyError, TypeError) as error:
                    broken = self.state_dir / f"{STATE_FILE}.broken-{int(time.time())}"
                    os.replace(self.state_dir / STATE_FILE, broken)
                    self._log(f"local target: state file unreadable ({error}); kept as {broken.name}")
                    processes = []
                for process in processes:
                    if process.pid == 0 and process.launch_token:
                        self._adopt(process)
                # Under the lock no start is in progress: an entry still without a pid never started.
                processes[:] = [p for p in processes if p.pid > 0]
                yield processes
                # Forget versions whose process group is gone entirely (crashed supervisor, killed by hand).
                processes[:] = [p for p in processes if p.alive]
                self._save(processes)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _adopt(self, process: AgentProcess) -> None:
        """An entry recorded before its start whose starter died before recording the pid: find the process by
        its launch token. Not found: the start never happened, and the entry goes with the dead ones."""
        pgid = _find_launched(process.launch_token)
        if pgid is not None:
            stat = _proc_stat(pgid)
            process.pid, process.start_ticks = pgid, stat[2] if stat else 0
            self._log(f"local target: found {process.service} {process.version} (pid {pgid}) started by a "
                      "starter that stopped before recording it")

    def _save(self, processes: list[AgentProcess]) -> None:
        _write_atomically(self.state_dir / STATE_FILE,
                          json.dumps({"processes": [p.to_dict() for p in processes]}, indent=1))
        targets = [
            {"targets": [f"{HOST}:{p.port}"],
             "labels": {"service": p.service, "env": p.env, "version": p.version, "track": p.track}}
            for p in processes if p.pid > 0
        ]
        _write_atomically(self.state_dir / TARGETS_FILE, json.dumps(targets, indent=1))

    def processes(self, service: str | None = None, env: str | None = None) -> list[AgentProcess]:
        with self._state() as processes:
            return [p for p in processes if service in (None, p.service) and env in (None, p.env)]

    def find(self, service: str, env: str, version: str) -> AgentProcess | None:
        return next((p for p in self.processes(service, env) if p.version == version), None)

    # -- processes ---------------------------------------------------------------------------------------------

    def start(self, service: str, env: str, version: str, *, track: str = TRACK_STABLE) -> tuple[AgentProcess, bool]:
        """Start the version unless it already runs; returns (process, started). A running version only has its
        track updated, so calling this twice changes nothing."""
        if track not in (TRACK_STABLE, TRACK_CANARY):
            raise TargetError(f"track: must be {TRACK_STABLE} or {TRACK_CANARY}, got {track!r}")
        with self._state() as processes:
            for process in processes:
                if process.key == (service, env, version) and process.alive:
                    process.track = track
                    return process, False
            processes[:] = [p for p in processes if p.key != (service, env, version)]

            def record(placeholder: AgentProcess) -> None:
                self._save(processes + [placeholder])  # on disk before the process exists

            process = self._spawn(service, env, version, track, record=record)
            processes.append(process)
        self._log(f"local target: started {service} {version} ({track}) in {env} as pid {process.pid} on "
                  f"port {process.port}")
        return process, True

    def _spawn(self, service: str, env: str, version: str, track: str, *, record=None) -> AgentProcess:
        sock = free_listening_socket()
        port = sock.getsockname()[1]
        values = {"service": service, "env": env, "version": version, "port": str(port),
                  "listen_fd": str(sock.fileno()), "track": track}
        try:
            command = [part.format(**values) for part in self.command]
        except (KeyError, IndexError) as error:
            sock.close()
            raise TargetError(f"command: unknown placeholder {error}; known: {', '.join(sorted(values))}") from None
        if version in self.profiles:
            command += ["--profile", self.profiles[version]]
        log_path = self.state_dir / "logs" / f"{service}-{env}-{version}.log"
        environment = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        token = uuid.uuid4().hex
        environment.update(PYTHONUNBUFFERED="1", **self.extra_env, **{LAUNCH_TOKEN_VAR: token})
        if record is not None:
            record(AgentProcess(service=service, env=env, version=version, track=track, pid=0, port=port,
                                start_ticks=0, started_at=time.time(), log_path=str(log_path), launch_token=token))
        try:
            with open(log_path, "ab") as log_file:
                child = subprocess.Popen(
                    command, cwd=self.cwd, env=environment, stdin=subprocess.DEVNULL, stdout=log_file,
                    stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),), start_new_session=True,
                )
        except OSError as error:
            raise TargetError(f"cannot start {service} {version}: {command[0]}: {error.strerror}") from None
        finally:
            sock.close()  # the child holds its own copy
        self._children[child.pid] = child
        stat = _proc_stat(child.pid)
        return AgentProcess(service=service, env=env, version=version, track=track, pid=child.pid, port=port,
                            start_ticks=stat[2] if stat else 0, started_at=time.time(), log_path=str(log_path),
                            launch_token=token)

    def health(self, process: AgentProcess) -> tuple[bool, str]:
        """One health probe: (healthy, what was seen)."""
        try:
            with urllib.request.urlopen(process.url + self.health_path, timeout=self.health_timeout_s) as answer:
                return answer.status == 200, f"HTTP {answer.status}"
        except urllib.error.HTTPError as error:
            return False, f"HTTP {error.code}"
        except (OSError, ValueError) as error:
            return False, f"no answer ({getattr(error, 'reason', error)})"

    def wait_healthy(self, process: AgentProcess, *, timeout_s: float | None = None) -> RolloutResult:
        """Poll the health endpoint until it answers 200, the process group dies, or the timeout passes."""
        deadline = time.monotonic() + (self.startup_timeout_s if timeout_s is None else timeout_s)
        seen = "not probed yet"
        answered = False
        while True:
            self._reap()
            if not process.alive:
                return RolloutResult(False, "CrashLoopBackOff",
                                     f"{process.service} {process.version} exited before it became healthy",
                                     desired_replicas=1, diagnostics=self._log_tail(process))
            healthy, seen = self.health(process)
            answered = answered or seen.startswith("HTTP")
            if healthy:
                return RolloutResult(True, "Complete", f"{process.service} {process.version} healthy on port "
                                     f"{process.port}", 1, 1, 1)
            if time.monotonic() >= deadline:
                reason = "ProbeFailing" if answered else "Timeout"
                return RolloutResult(False, reason, f"{process.service} {process.version} not healthy on port "
                                     f"{process.port} after the startup timeout: last probe {seen}",
                                     desired_replicas=1, updated_replicas=1, diagnostics=self._log_tail(process))
            time.sleep(0.1)

    def _log_tail(self, process: AgentProcess, lines: int = 20) -> tuple[str, ...]:
        try:
            with open(process.log_path, "rb") as log_file:
                log_file.seek(0, os.SEEK_END)
                log_file.seek(max(0, log_file.tell() - 8192))
                return tuple(log_file.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return ()

    def _reap(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def _terminate(self, process: AgentProcess) -> None:
        """SIGTERM the version's process group, SIGKILL what is left after stop_timeout_s."""
        if process.pid <= 0:
            return  # never started: killpg(0) would signal our own process group
        if not _leader_is_ours(process):
            self._log(f"local target: pid {process.pid} of {process.service} {process.version} now belongs to "
                      "another program; not signalling it")
            return
        for sig, wait_s in ((signal.SIGTERM, self.stop_timeout_s), (signal.SIGKILL, 2.0)):
            if not process_group_members(process.pid):
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                self._reap()
                if not process_group_members(process.pid):
                    break
                time.sleep(0.05)
            else:
                if sig == signal.SIGTERM:
                    self._log(f"local target: {process.service} {process.version} ignored SIGTERM for "
                              f"{wait_s:g} s; killing it")
        child = self._children.pop(process.pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=2.0)
        left = process_group_members(process.pid)
        if left:
            raise TargetError(f"{process.service} {process.version}: processes {left} survived SIGKILL")

    def stop(self, service: str | None = None, env: str | None = None, version: str | None = None) -> list[str]:
        """Stop the matching versions (all of them with no argument); returns the versions stopped."""
        stopped = []
        with self._state() as processes:
            for process in list(processes):
                if service in (None, process.service) and env in (None, process.env) and \
                        version in (None, process.version):
                    self._terminate(process)
                    processes.remove(process)
                    stopped.append(process.version)
                    self._log(f"local target: stopped {process.service} {process.version} in {process.env}")
        return stopped

    # -- release steps (what the driver calls) -----------------------------------------------------------------

    def go_live(self, service: str, env: str, version: str) -> list[str]:
        """``version`` becomes the stable version; every other version of the service in env is stopped."""
        process, _ = self.start(service, env, version, track=TRACK_STABLE)
        result = self.wait_healthy(process)
        if not result.ok:
            raise TargetError(f"{service} {version} in {env} is not healthy, old versions left running: "
                              f"{result.message}")
        stopped = []
        for other in self.processes(service, env):
            if other.version != version:
                stopped += self.stop(service, env, other.version)
        return stopped

    def roll_back(self, service: str, env: str, version: str, *, restore: str | None = None) -> None:
        """Stop ``version``; with ``restore`` (a live rollback) start that version as stable first."""
        problem = None
        if restore:
            process, _ = self.start(service, env, restore, track=TRACK_STABLE)
            result = self.wait_healthy(process)
            if not result.ok:
                problem = f"restored {restore} is not healthy: {result.reason}: {result.message}"
        self.stop(service, env, version)
        if problem:
            raise TargetError(f"{service} in {env}: {version} stopped, but {problem}")

    def set_weight(self, service: str, env: str, version: str, weight: int) -> None:
        """Nothing to move: the scheduler routes by the routing table. Log the weight and check the canary."""
        process = self.find(service, env, version)
        if process is None:
            raise TargetError(f"{service} {version} in {env} is not running on this machine")
        healthy, seen = self.health(process)
        self._log(f"local target: {service} {version} in {env} at {weight} % (routing table decides; process "
                  f"on port {process.port} {'healthy' if healthy else 'NOT healthy: ' + seen})")
        if not healthy:
            raise TargetError(f"{service} {version} in {env} is not healthy: {seen}")

    # -- DeployTarget --------------------------------------------------------------------------------------------

    def apply(self, revision: Revision) -> ApplyResult:
        """Start the revision's image tag as a local version. The manifests are not used here."""
        process, started = self.start(revision.service, revision.env, revision.image_tag, track=revision.track)
        return ApplyResult((ObjectChange("Process", f"{revision.service}-{revision.image_tag}",
                                         "created" if started else "unchanged"),))

    def watch_rollout(self, revision: Revision, *, timeout_seconds: float | None = None) -> RolloutResult:
        process = self.find(revision.service, revision.env, revision.image_tag)
        if process is None:
            return RolloutResult(False, "NotFound", f"{revision.service} {revision.image_tag} is not running")
        return self.wait_healthy(process, timeout_s=timeout_seconds)

    def set_traffic(self, service: str, env: str, *, stable_tag: str, canary_tag: str, weight: int,
                    header_match: dict[str, str] | None = None) -> TrafficResult:
        """The weight lives in the routing table; this only checks that the canary is there and healthy.
        ``mode`` is "routing-table": neither Istio nor replicas carry the split on this target."""
        self.set_weight(service, env, canary_tag, weight)
        return TrafficResult(mode="routing-table", requested_weight=weight, effective_weight=float(weight),  # type: ignore[arg-type]
                             header_match=header_match)

    def switch_blue_green(self, service: str, env: str, *, to_colour: Colour) -> BlueGreenSwitch:
        raise TargetError("local target: blue-green is a routing-table cut-over (canary_weight 100); "
                          "there are no colours to switch")

    def scale_down_idle(self, service: str, env: str) -> ScaleDownResult:
        """Stop every version of the service in env that is not on the stable track."""
        idle = [p.version for p in self.processes(service, env) if p.track != TRACK_STABLE]
        for version in idle:
            self.stop(service, env, version)
        return ScaleDownResult(None, bool(idle), f"stopped {', '.join(idle)}" if idle else "nothing idle")


# --- command line -----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m deploy.targets.local",
                                     description="Inspect and control the local deploy target.")
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="list recorded versions")
    start = commands.add_parser("start", help="start a version and wait until healthy")
    stop = commands.add_parser("stop", help="stop versions (all with no argument)")
    for sub, required in ((start, True), (stop, False)):
        for name in ("service", "env", "version"):
            sub.add_argument(name, nargs=None if required else "?")
    start.add_argument("--track", default=TRACK_STABLE, choices=(TRACK_STABLE, TRACK_CANARY))
    start.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.command == "status":
        for process in read_processes(args.state_dir):
            print(f"{process.service:20} {process.env:10} {process.version:12} {process.track:7} pid {process.pid:<7}"
                  f" {process.url:24} {'running' if process.alive else 'gone'}")
        return 0
    profiles = {args.version: args.profile} if getattr(args, "profile", None) else None
    target = LocalTarget(args.state_dir, profiles=profiles, log=print)
    if args.command == "start":
        process, _ = target.start(args.service, args.env, args.version, track=args.track)
        result = target.wait_healthy(process)
        print(result.message)
        for line in result.diagnostics:
            print("  " + line)
        return 0 if result.ok else 1
    target.stop(args.service, args.env, args.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
