"""A real uvicorn server (http + websocket) on 127.0.0.1 in a subprocess, over the pytest test database: shared by
the browser tests (tests/e2e) and the CLI tests (tests/cli), which talk to it as a user's tools would."""
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connections

from tests.conftest import app_database_url

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database as the app role (tests/conftest.py): the server runs with the rights production gives it."""
    if connections["default"].vendor != "postgresql":
        pytest.skip("live-server tests need PostgreSQL (set DATABASE_URL): the server process shares the test database")
    return app_database_url()


@contextlib.contextmanager
def uvicorn_server(log_name: str = "e2e-server.log", extra_env: dict | None = None):
    """Yield the server's base URL once it answers; stop it (bounded) afterwards."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
           "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(),
           "REDIS_URL": settings.REDIS_URL, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / log_name, "a")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/login/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not answer within 30 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()
