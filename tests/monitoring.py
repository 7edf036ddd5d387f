"""Real Prometheus (with rule files and an Alertmanager) and a real Alertmanager, on loopback, for the tests.

Each process gets a temporary directory, a free port and a bounded wait for readiness; stop() ends it.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

ALERTMANAGER = "prometheus-alertmanager"  # Debian's name for the alertmanager binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(binary: str, package: str) -> str:
    path = shutil.which(binary) or shutil.which(binary.removeprefix("prometheus-"))
    if path is None:
        pytest.skip(f"{binary} is not installed (Debian package {package}; scripts/install-system.sh installs it)")
    return path


def wait_until(condition, *, timeout_s: float, interval_s: float = 0.2, what="condition"):
    """Poll `condition` until true or `timeout_s` passes; `what` (text, or a callable for late details) names it."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what() if callable(what) else what} not met within {timeout_s} s")
        time.sleep(interval_s)


class _Process:
    name = "process"

    def __init__(self):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"rollgate-{self.name}-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.scheme = "http"
        self.ready_request: dict = {}  # requests arguments for the readiness probe (verify=, auth=)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.workdir / "log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _start(self, argv: list[str], *, ready_timeout_s: float = 30) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(self.workdir / "log", "wb"))

        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log}")
            try:
                return requests.get(f"{self.url}/-/ready", timeout=1, **self.ready_request).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(ready, timeout_s=ready_timeout_s, what=f"{self.name} ready")
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.workdir, ignore_errors=True)


class AlertmanagerProcess(_Process):
    """Alertmanager routing every alert to one webhook, grouping by alertname/service/env, in about a second."""

    name = "alertmanager"

    def start(self, *, webhook_url: str, bearer_token: str) -> "AlertmanagerProcess":
        config = {
            "route": {"receiver": "rollgate", "group_by": ["alertname", "service", "env"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "rollgate", "webhook_configs": [{
                "url": webhook_url, "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials": bearer_token}}}]}],
        }
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self._start([require(ALERTMANAGER, "prometheus-alertmanager"),
                     f"--config.file={self.workdir / 'alertmanager.yml'}",
                     f"--storage.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                     "--cluster.listen-address=", "--log.level=warn"])
        return self


class PrometheusWithRules(_Process):
    """Prometheus evaluating `rule_files` every second, scraping `targets`, alerting `alertmanager_url`."""

    name = "prometheus"
    log_level = "warn"

    def start(self, *, rule_files: list[Path] = (), targets: list[str] = (), alertmanager_url: str = "",
              scrape_config: dict | None = None, web_config: dict | None = None,
              ready_request: dict | None = None) -> "PrometheusWithRules":
        """web_config: Prometheus' --web.config.file (TLS, basic auth); ready_request: how to probe it then."""
        config: dict = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                        "rule_files": [str(path) for path in rule_files]}
        jobs = []
        if targets:
            jobs.append({"job_name": "rollgate", "static_configs": [{"targets": list(targets)}]})
        if scrape_config:
            jobs.append(scrape_config)
        config["scrape_configs"] = jobs
        if alertmanager_url:
            config["alerting"] = {"alertmanagers": [{"static_configs": [
                {"targets": [alertmanager_url.removeprefix("http://")]}]}]}
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        extra = []
        if web_config:
            (self.workdir / "web.yml").write_text(yaml.safe_dump(web_config))
            extra.append(f"--web.config.file={self.workdir / 'web.yml'}")
            self.scheme = "https" if "tls_server_config" in web_config else "http"
            self.ready_request = ready_request or {}
        self._start([require("prometheus", "prometheus"), f"--config.file={self.workdir / 'prometheus.yml'}", *extra,
                     f"--storage.tsdb.path={self.workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.port}",
                     # The first notification can race the Alertmanager's discovery and be dropped: resend soon.
                     "--rules.alert.resend-delay=1s", "--log.level=" + self.log_level])
        return self

    def rules(self) -> list[dict]:
        return requests.get(f"{self.url}/api/v1/rules", timeout=5).json()["data"]["groups"]

    def query(self, promql: str) -> list[dict]:
        return requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()["data"]["result"]
