"""Production is the default: without an explicit settings choice the app refuses to start without its secrets,
and with them `manage.py check --deploy` finds nothing to warn about (HSTS, HTTPS redirect, secure cookies, CSP)."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DJANGO_SETTINGS_MODULE", "SECRET_KEY", "SECRET_KEY_FILE", "ROLLGATE_CREDENTIALS_KEY",
                          "ROLLGATE_CREDENTIALS_KEY_FILE")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_without_a_settings_choice_the_app_runs_production_and_refuses_to_start_without_secrets():
    result = manage("check")
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set in production" in result.stderr
    result = manage("check", SECRET_KEY=secrets.token_urlsafe(50))
    assert "ROLLGATE_CREDENTIALS_KEY (or ROLLGATE_CREDENTIALS_KEY_FILE) must be set in production" in result.stderr


def test_production_settings_pass_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=secrets.token_urlsafe(50),
                    ROLLGATE_CREDENTIALS_KEY=secrets.token_urlsafe(32))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_keys_committed_for_local_and_test_runs_are_refused_in_production():
    from config.settings import local, test

    result = manage("check", SECRET_KEY=local.SECRET_KEY, ROLLGATE_CREDENTIALS_KEY=secrets.token_urlsafe(32))
    assert result.returncode != 0 and "SECRET_KEY is one of the keys committed to the repository" in result.stderr
    result = manage("check", SECRET_KEY=secrets.token_urlsafe(50), ROLLGATE_CREDENTIALS_KEY=test.ROLLGATE_CREDENTIALS_KEY)
    assert "ROLLGATE_CREDENTIALS_KEY is one of the keys committed" in result.stderr


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_script(rm):
    client = Client()
    client.force_login(rm)
    response = client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    html = response.content.decode()
    # Nothing on the page needs inline script or eval: no inline handlers, no htmx trigger filters.
    assert "onsubmit=" not in html and "[!window" not in html and '"allowEval": false' in html
