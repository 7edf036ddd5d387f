"""Rollgate's own processes (web, worker, gate worker, beat) for the fault tests and bench/faults.py, started with
the settings the project ships unless the test says otherwise, and always stopped at the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.faults.services import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    def __init__(self, log_dir: Path, *, database_url: str, redis_url: str, **env):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**{k: v for k, v in os.environ.items() if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE",)},
                    "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url,
                    "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1", **{k: str(v) for k, v in env.items()}}
        self.processes: dict[str, subprocess.Popen] = {}
        self.url = ""

    def start(self, name: str, argv: list[str], **env) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(argv, cwd=ROOT, env={**self.env, **{k: str(v) for k, v in env.items()}},
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def web(self) -> str:
        port = free_port()
        self.start("web", [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                           "--port", str(port), "--no-access-log", "--log-level", "warning"])
        wait_port(port, up=True, timeout=30)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def worker(self, name: str = "worker", *, queues: str = "celery", concurrency: int = 2, **env):
        return self.start(name, [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
                                 "--concurrency", str(concurrency), "-n", f"{name}-{os.getpid()}@127.0.0.1",
                                 "-l", "info", "--without-gossip", "--without-mingle"], **env)

    def beat(self, **env):
        return self.start("beat", [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info",
                                   "-s", str(self.log_dir / "beat-schedule")], **env)

    def kill(self, name: str) -> None:
        """SIGKILL the process and every child (the prefork pool): no chance to acknowledge or clean up."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def assert_running(self) -> None:
        exited = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        assert not exited, f"processes exited: {exited}\n{self.logs()}"

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}"
                         for path in sorted(self.log_dir.glob("*.log")))

    def token(self, username: str, password: str) -> str:
        response = httpx.post(f"{self.url}/api/auth/token/", json={"username": username, "password": password},
                              timeout=10)
        response.raise_for_status()
        return response.json()["token"]

    def post(self, token: str, path: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", headers={"Authorization": f"Token {token}"}, json=body, timeout=30)


def create_release(stack: Stack, token: str, tag: str, *, env: str = "staging", service: str = "agent-infer") -> int:
    """Create a release through the stack's API (so its work is queued on the stack's Redis); its id."""
    global _commits
    _commits += 1
    response = stack.post(token, "/api/releases/", {"service": service, "environment": env, "tag": tag,
                                                     "commit": f"{_commits:040x}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


_commits = 0x5EED0000
