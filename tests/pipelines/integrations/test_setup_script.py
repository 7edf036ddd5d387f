"""scripts/setup-pipelines.sh must be safe to run again and must return (make test calls it)."""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "setup-pipelines.sh"


def test_setup_script_run_again_changes_nothing_and_returns(engine, registry):
    # The fixtures above prove the services are up, so a second run has nothing to do.
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "DOCKER_HOST=unix:///run/podman/podman.sock"
    assert "wrote" not in done.stderr and "starting" not in done.stderr, done.stderr
    conf = Path("/etc/containers/containers.conf").read_text()
    assert 'runtime = "runc"' in conf and '"nofile=1024:1024"' in conf
