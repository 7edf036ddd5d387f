"""Agent registry: register, heartbeat, the stale-instance rule, and who may call it."""
from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from routing import auth
from routing.models import AgentInstance

from ..conftest import client_for

REPORT = {"service": "agent-infer", "environment": "staging", "agent_id": "agent-338", "model": "gpt4",
          "version": "v1.0.0", "gray_tag": "gray-phase-A", "status": "healthy", "region": "cn-bj"}


def agent_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_register_then_heartbeat_refreshes_last_seen(agent_key):
    client = agent_client(agent_key)
    created = client.post("/api/agents/register", REPORT, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["stale"] is False
    first_seen = AgentInstance.objects.get(agent_id="agent-338").last_seen

    again = client.post("/api/agents/heartbeat", {**REPORT, "status": "degraded"}, format="json")
    assert again.status_code == 200, again.content
    instance = AgentInstance.objects.get(agent_id="agent-338")
    assert instance.status == "degraded" and instance.last_seen > first_seen
    # Registering again (a restart) updates the same instance instead of creating a second one.
    assert client.post("/api/agents/register", {**REPORT, "version": "v1.1.0"}, format="json").status_code == 200
    assert AgentInstance.objects.get(agent_id="agent-338").version == "v1.1.0"


def test_instance_turns_stale_after_missed_heartbeats_and_live_again_on_heartbeat(agent_key, settings, rm):
    settings.ROLLGATE_AGENT_HEARTBEAT_SECONDS = 10
    settings.ROLLGATE_AGENT_MISSED_HEARTBEATS = 3
    agent = agent_client(agent_key)
    agent.post("/api/agents/register", REPORT, format="json")
    agent.post("/api/agents/register", {**REPORT, "agent_id": "agent-339"}, format="json")
    # 29 s without a heartbeat: still live (fewer than 3 missed); 31 s: stale.
    AgentInstance.objects.filter(agent_id="agent-338").update(last_seen=timezone.now() - timedelta(seconds=31))
    AgentInstance.objects.filter(agent_id="agent-339").update(last_seen=timezone.now() - timedelta(seconds=29))

    listed = client_for(rm).get("/api/agents/", {"service": "agent-infer", "environment": "staging"}).json()
    assert {i["agent_id"]: i["stale"] for i in listed} == {"agent-338": True, "agent-339": False}
    live_only = client_for(rm).get("/api/agents/", {"service": "agent-infer", "environment": "staging",
                                                    "stale": "false"}).json()
    assert [i["agent_id"] for i in live_only] == ["agent-339"]

    assert agent.post("/api/agents/heartbeat", REPORT, format="json").status_code == 200
    listed = agent.get("/api/agents/", {"service": "agent-infer", "environment": "staging"}).json()
    assert {i["agent_id"]: i["stale"] for i in listed} == {"agent-338": False, "agent-339": False}


def test_heartbeat_of_unregistered_agent_is_404_naming_register(agent_key):
    response = agent_client(agent_key).post("/api/agents/heartbeat", REPORT, format="json")
    assert response.status_code == 404
    assert "register" in response.json()["detail"]


def test_anonymous_and_human_tokens_are_refused_by_the_registry(environments, service, rm):
    anonymous = APIClient().post("/api/agents/register", REPORT, format="json")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert client_for(rm).post("/api/agents/register", REPORT, format="json").status_code in (401, 403)
    bad = agent_client("rgat_not-a-real-key").post("/api/agents/register", REPORT, format="json")
    assert bad.status_code == 401


def test_token_scope_and_revocation(environments, service, agent_key):
    client = agent_client(agent_key)
    other_env = client.post("/api/agents/register", {**REPORT, "environment": "prod"}, format="json")
    assert other_env.status_code == 403
    assert "staging" in other_env.json()["detail"]
    token_id = auth.agent_for_key(agent_key).token_id
    assert auth.token_revoke(token_id=token_id)
    assert client.post("/api/agents/register", REPORT, format="json").status_code == 401


def test_bad_report_is_400_naming_the_field(agent_key):
    response = agent_client(agent_key).post("/api/agents/register", {**REPORT, "status": "sleepy", "colour": 1},
                                            format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "colour" in errors
    response = agent_client(agent_key).post("/api/agents/register", {**REPORT, "status": "sleepy"}, format="json")
    assert response.status_code == 400 and "status" in response.json()["errors"]
