"""Smaller points of the security review: /metrics/traces is closed without a token unless opened explicitly,
GitLab webhook tokens are per project and start only that project's services, tags take ASCII digits only."""
import hashlib

import pytest
from django.test import Client
from rest_framework.test import APIClient

from releases.conventions import ConventionError, parse_tag
from releases.models import Release


def test_metrics_are_closed_without_a_token_unless_opened(settings, db):
    settings.ROLLGATE_METRICS_OPEN = False
    settings.ROLLGATE_METRICS_TOKEN = ""
    response = Client().get("/metrics/traces")
    assert response.status_code == 403 and b"ROLLGATE_METRICS_OPEN" in response.content
    settings.ROLLGATE_METRICS_TOKEN = "scrape-secret"
    assert Client().get("/metrics/traces").status_code == 401
    assert Client().get("/metrics/traces", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code in (200, 503)
    settings.ROLLGATE_METRICS_TOKEN = ""
    settings.ROLLGATE_METRICS_OPEN = True
    assert Client().get("/metrics/traces").status_code in (200, 503)


@pytest.mark.parametrize("tag", ["v１.2.3", "v1.٢.3", "v1.2.3-rc١", "v1.2.3-r۱"])
def test_tags_with_non_ascii_digits_are_refused(tag):
    with pytest.raises(ConventionError):
        parse_tag(tag)


PROJECT_TOKEN = "per-project-secret-0123"


@pytest.fixture
def project_tokens(settings, service, environments):
    from releases.models import AgentService

    AgentService.objects.create(name="agent-billing", image_repository="registry.example.com/agent/billing",
                                source_repository="https://gitlab.example.com/agents/agent-billing")
    service.source_repository = "https://gitlab.example.com/agents/agent-infer.git"
    service.save()
    settings.ROLLGATE_GITLAB_WEBHOOK_TOKEN = "shared-legacy-token"
    settings.ROLLGATE_GITLAB_PROJECTS = {}
    settings.ROLLGATE_GITLAB_PROJECT_TOKENS = {
        "agents/agent-infer": {"token_sha256": hashlib.sha256(PROJECT_TOKEN.encode()).hexdigest(),
                               "services": ["agent-infer"]}}


def push(path, token, service_repo=None):
    payload = {"object_kind": "tag_push", "ref": "refs/tags/v1.4.0-rc1", "checkout_sha": "a" * 40,
               "project": {"path_with_namespace": path, "web_url": f"https://gitlab.example.com/{path}"}}
    return APIClient().post("/api/webhooks/gitlab/", payload, format="json", HTTP_X_GITLAB_EVENT="Tag Push Hook",
                            HTTP_X_GITLAB_TOKEN=token)


def test_a_project_token_starts_releases_of_its_own_services_only(project_tokens):
    assert push("agents/agent-infer", PROJECT_TOKEN).status_code in (200, 201)
    assert Release.objects.filter(service__name="agent-infer").count() == 1

    other = push("agents/agent-billing", PROJECT_TOKEN)
    assert other.status_code == 403 and "belongs to project agents/agent-infer" in other.json()["detail"]
    # Once per-project tokens exist, the shared token no longer opens the webhook.
    assert push("agents/agent-billing", "shared-legacy-token").status_code == 403
    assert not Release.objects.filter(service__name="agent-billing").exists()


def test_a_project_token_cannot_name_a_service_outside_its_list(project_tokens, settings):
    settings.ROLLGATE_GITLAB_PROJECTS = {"agents/agent-infer": "agent-billing"}
    response = push("agents/agent-infer", PROJECT_TOKEN)
    assert response.status_code == 403 and "not agent-billing" in response.json()["detail"]
