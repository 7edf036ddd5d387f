"""The durable-work settings are checked together (pipelines/checks.py): a combination that cannot take a crashed
worker's stage over in time, or that would deliver waiting messages twice, is refused by `manage.py check` and by a
worker at start-up, with the setting named."""
import json
import os
import subprocess
import sys

import pytest
from django.core import checks

from pipelines.checks import TAG
from tests.faults.stack import ROOT


def ids(**overrides) -> list[str]:
    from django.test import override_settings

    with override_settings(**overrides):
        return [problem.id for problem in checks.run_checks(tags=[TAG])]


def test_the_shipped_settings_pass_and_take_over_within_30_s(settings):
    assert ids() == []
    assert settings.ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS + settings.ROLLGATE_SWEEP_INTERVAL_SECONDS <= 30
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= 2 * max(
        settings.ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS, settings.ROLLGATE_REDRIVE_AFTER_SECONDS)


@pytest.mark.parametrize("overrides, expected", [
    ({"ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS": 1.0, "ROLLGATE_SWEEP_INTERVAL_SECONDS": 1.0}, "rollgate.E101"),
    ({"ROLLGATE_SWEEP_INTERVAL_SECONDS": 20.0}, "rollgate.E102"),
    ({"ROLLGATE_REDRIVE_AFTER_SECONDS": 10.0}, "rollgate.E103"),
    ({"CELERY_BROKER_TRANSPORT_OPTIONS": {"visibility_timeout": 600}, "ROLLGATE_PIPELINE_RETRY_BACKOFF_CAP_SECONDS": 400.0},
     "rollgate.E104"),
    ({"ROLLGATE_PIPELINE_STAGE_TIME_LIMITS": {"build": 10, "push": 900}}, "rollgate.E105"),
    ({"ROLLGATE_PIPELINE_HEARTBEAT_STALE_SECONDS": 28.0, "ROLLGATE_SWEEP_INTERVAL_SECONDS": 10.0,
      "ROLLGATE_REDRIVE_AFTER_SECONDS": 30.0}, "rollgate.W101"),
])
def test_incoherent_settings_are_named(overrides, expected):
    assert expected in ids(**overrides)


def test_a_worker_refuses_to_start_with_incoherent_settings():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test",
           "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps({"visibility_timeout": 30})}
    result = subprocess.run([sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-Q", "nothing",
                             "--without-gossip", "--without-mingle", "--without-heartbeat"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "rollgate.E104" in output and "visibility_timeout (30 s)" in output
    assert "refusing to start" in output
