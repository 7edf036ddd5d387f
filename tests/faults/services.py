"""Private PostgreSQL and Redis servers for the fault tests and bench/faults.py: started on free loopback ports in a
temporary directory, restarted and stopped by the test, never the shared ones on 5432 and 6379."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, *, up: bool, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            answered = sock.connect_ex(("127.0.0.1", port)) == 0
        if answered == up:
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} within {timeout} s")


class PrivateRedis:
    """redis-server on its own port. ``appendonly``: persistence through the append-only file (fsync always, so a
    graceful restart keeps every message); without it a restart loses everything, like Redis's own default."""

    def __init__(self, directory: Path, *, appendonly: bool = False):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                "--save", "", "--protected-mode", "yes", "--loglevel", "warning",
                "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"]
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, up=True)
        return self

    def stop(self, *, graceful: bool = True) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        self.process.wait(timeout=15)
        wait_port(self.port, up=False)

    def restart(self, *, down_s: float = 0.0, graceful: bool = True, while_down=None) -> None:
        self.stop(graceful=graceful)
        if while_down is not None:
            while_down()
        time.sleep(down_s)
        self.start()


class PrivateCluster:
    """A PostgreSQL cluster of its own (pg_createcluster on a free port, data in a temp directory), trust auth on
    loopback; dropped with its data when the test ends."""

    def __init__(self, directory: Path | None = None):
        # The postgres user must reach the data directory: not under pytest's private (0700) temp tree.
        self.directory = Path(tempfile.mkdtemp(prefix="rollgate-pg-"))
        self.directory.chmod(0o755)
        self.port = free_port()
        self.name = f"rgfault{uuid.uuid4().hex[:8]}"
        self.version = sorted(os.path.basename(p) for p in glob.glob("/usr/lib/postgresql/*"))[-1]

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/rollgate"

    def _ctl(self, action: str, *extra: str) -> None:
        subprocess.run(["pg_ctlcluster", self.version, self.name, action, *extra], check=True,
                       capture_output=True, timeout=60)

    def create(self) -> "PrivateCluster":
        data = self.directory / "data"
        subprocess.run(["pg_createcluster", self.version, self.name, "--port", str(self.port), "--datadir", str(data),
                        "--", "--auth-local=trust", "--auth-host=trust"], check=True, capture_output=True,
                       timeout=120)
        conf = Path(f"/etc/postgresql/{self.version}/{self.name}/postgresql.conf")
        with conf.open("a") as f:
            f.write("listen_addresses = '127.0.0.1'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        self.start()
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c",
                        "CREATE DATABASE rollgate"], check=True, capture_output=True, timeout=30)
        return self

    def start(self) -> None:
        self._ctl("start")
        wait_port(self.port, up=True)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)
        wait_port(self.port, up=False)

    def restart(self, *, down_s: float = 0.0, mode: str = "fast", while_down=None) -> None:
        self.stop(mode)
        if while_down is not None:
            while_down()
        time.sleep(down_s)
        self.start()

    def drop(self) -> None:
        subprocess.run(["pg_dropcluster", "--stop", self.version, self.name], capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)
