"""API tokens and agent tokens are stored as digests: a database dump yields no usable key."""
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.models import AuditEvent
from routing.models import AgentToken


def login(username):
    cache.clear()
    response = APIClient().post("/api/auth/token/", {"username": username, "password": f"pw-{username}"},
                                format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def test_the_database_holds_a_digest_and_the_key_still_works(dev, environments):
    key = login("dev")
    stored = Token.objects.get(user=dev).key
    assert stored != key and key not in stored
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/releases/").status_code == 200
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Token {stored}")  # the dumped value is not a key
    assert forged.get("/api/releases/").status_code == 401
    assert AuditEvent.objects.filter(action="auth.token_issued", actor_name="dev").exists()


def test_a_new_login_replaces_the_previous_token(dev, environments):
    first = login("dev")
    second = login("dev")
    assert first != second and Token.objects.filter(user=dev).count() == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.get("/api/releases/").status_code == 401


def test_a_human_token_reads_routing_tables(rm, live_release):
    key = login("rm")
    response = APIClient().get("/api/routing/agent-infer/staging/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


def test_agent_tokens_are_stored_as_digests(environments, service):
    from routing import auth

    token, key = auth.token_create(name="scheduler", environment=environments["staging"], service=service)
    stored = AgentToken.objects.get(pk=token.pk)
    assert key not in (stored.key_hash, stored.prefix) and stored.key_hash == auth.hash_key(key)


def test_a_human_token_lists_agents(rm, environments, service):
    key = login("rm")
    response = APIClient().get("/api/agents/?service=agent-infer&environment=staging",
                               HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200, response.content
