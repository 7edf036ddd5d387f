"""The CLI against a live server: uvicorn in a subprocess over the test database, the CLI in subprocesses as a CI
job would run it (`python -m rollgate_cli`, the same code as the installed `rollgate` command)."""
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.live_server import ROOT, uvicorn_server


@pytest.fixture(scope="module")
def server_url(django_db_setup):
    with uvicorn_server("cli-server.log") as url:
        yield url


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def cli(server_url, tmp_path):
    """cli(*args, stdin=None, env=None) -> Result. Credentials live in this test's own file."""
    config = tmp_path / "rollgate" / "credentials.json"

    def run(*args: str, stdin: str | None = None, env: dict | None = None, timeout: float = 60) -> Result:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("ROLLGATE_", "CI_", "DJANGO_")) and k not in ("LC_ALL", "LC_MESSAGES")}
        clean["LANG"] = "C.UTF-8"  # the server's refusals in English unless a test asks for another language
        process = subprocess.run([sys.executable, "-m", "rollgate_cli", *args], cwd=ROOT, input=stdin,
                                 capture_output=True, text=True, timeout=timeout,
                                 env={**clean, "ROLLGATE_CONFIG": str(config), **(env or {})})
        return Result(process.returncode, process.stdout, process.stderr)

    def popen(*args: str) -> subprocess.Popen:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("ROLLGATE_", "CI_", "DJANGO_")) and k not in ("LC_ALL", "LC_MESSAGES")}
        clean["LANG"] = "C.UTF-8"  # the server's refusals in English unless a test asks for another language
        return subprocess.Popen([sys.executable, "-m", "rollgate_cli", *args], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**clean, "ROLLGATE_CONFIG": str(config)})

    run.popen = popen
    run.config = config
    run.url = server_url
    return run


@pytest.fixture
def login(cli):
    def as_user(username: str) -> None:
        result = cli("login", "--url", cli.url, "--username", username, "--password-stdin", stdin=f"pw-{username}\n")
        assert result.code == 0, result.stderr

    return as_user
