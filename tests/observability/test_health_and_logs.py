"""Liveness and readiness on separate endpoints, and structured JSON log lines carrying request id, actor and
release id."""
import io
import json
import logging
import logging.config

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from config.logs import bind_task_context
from releases.services import Actor, release_promote
from tests.conftest import client_for


@pytest.fixture
def log_lines():
    """The project's formatter on a handler of our own: what a log collector would read, one JSON per line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.config.DictConfigurator({}).configure_formatter(
        dict(settings.LOGGING["formatters"]["rollgate"])))  # a copy: configuring pops "()" from the dict
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    root.removeHandler(handler)


@pytest.mark.django_db
def test_live_is_up_even_when_redis_and_the_database_are_not_checked(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = APIClient().get("/api/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_checks_database_and_redis_and_names_what_is_down(settings):
    response = APIClient().get("/api/health/ready")
    assert response.status_code == 200 and response.json()["checks"] == {"database": "ok", "redis": "ok"}
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = APIClient().get("/api/health/ready")
    assert response.status_code == 503
    assert response.json()["down"] == ["redis"] and response.json()["checks"]["redis"].startswith("down: ")


@pytest.mark.django_db(transaction=True)  # the audit line is written on commit, as in production
def test_log_lines_are_json_with_request_id_actor_and_release(log_lines, live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    response = client_for(rm).post(f"/api/releases/{release.pk}/promote/", {}, format="json",
                                   HTTP_X_REQUEST_ID="req-17-4411")
    assert response.status_code == 200, response.content
    assert response["X-Request-ID"] == "req-17-4411"
    [line] = [line for line in log_lines() if line.get("event") == "release.promote"
              and line.get("release_id") == release.pk]
    assert line["request_id"] == "req-17-4411" and line["actor"] == "rm"
    assert line["level"] == "info" and line["logger"] == "rollgate.audit"
    assert line["timestamp"].endswith("Z") and (line["from_state"], line["to_state"]) == ("ready", "gray")


@pytest.mark.django_db
def test_a_request_without_an_id_gets_one_and_a_forged_one_is_replaced(log_lines):
    first = APIClient().get("/api/health/live")
    forged = APIClient().get("/api/health/live", HTTP_X_REQUEST_ID='bad id"\n{')
    assert len(first["X-Request-ID"]) == 32 and forged["X-Request-ID"] != 'bad id"\n{'


def test_task_log_lines_carry_the_task_and_its_release(log_lines):
    bind_task_context(task_id="t-981", task_name="deploy.set_weight", kwargs={"release_id": 73})
    logging.getLogger("rollgate.deploy").warning("moving %s %% of traffic", 30)
    [line] = [line for line in log_lines() if line.get("logger") == "rollgate.deploy"]
    assert (line["event"], line["release_id"], line["task"], line["task_id"], line["level"]) == (
        "moving 30 % of traffic", 73, "deploy.set_weight", "t-981", "warning")
