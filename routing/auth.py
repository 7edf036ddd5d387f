"""Who may talk to the scheduler endpoints.

Agents and schedulers authenticate with an **agent token**: ``Authorization: Bearer <key>``. A token belongs to
one environment and optionally one service (``python manage.py routing_agent_token create --environment prod
[--service agent-infer] --name scheduler-bj`` prints the key once; only its SHA-256 is stored; ``revoke`` ends it).
A token may register instances, send heartbeats and trace results, and read routing tables, all only inside its
scope. People may read routing tables with their own API token or session (role with ``release.view``); the
registry and the results endpoint take agent tokens only. Anonymous requests get 401.

Why not a DRF token of a service user: an agent needs none of the human roles, and a per-environment token
cannot be used against prod by a dev agent by mistake.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from releases.services import Actor, audit_record
from routing.models import AgentToken

KEY_PREFIX = "rgat_"
_CACHE_SECONDS = 10.0  # a revoked token stops working within this long in every process
_cache: dict[str, tuple[float, "AgentPrincipal | None"]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class AgentPrincipal:
    token_id: int
    name: str
    environment: str
    service: str | None  # None: every service of the environment

    def may_access(self, service: str, environment: str) -> bool:
        return environment == self.environment and (self.service is None or service == self.service)

    def scope_error(self, service: str, environment: str) -> str:
        scope = f"{self.service or 'every service'} in {self.environment}"
        return f"agent token '{self.name}' is for {scope}, not {service[:80]} in {environment[:30]}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_create(*, name: str, environment, service=None, actor=None) -> tuple[AgentToken, str]:
    """Create a token and audit it (who, for which scope; never the key). `actor` defaults to manage.py."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = AgentToken.objects.create(name=name, environment=environment, service=service,
                                          key_hash=hash_key(key), prefix=key[:12])
        audit_record(actor=actor or Actor.system("manage.py"), action="agent_token.create", object_type="agent_token",
                     object_id=token.pk, service=service, environment=environment, to_state="active",
                     details={"name": name, "prefix": token.prefix})
    return token, key


def token_revoke(*, token_id: int, actor=None) -> bool:
    with transaction.atomic():
        updated = AgentToken.objects.filter(pk=token_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            token = AgentToken.objects.select_related("service", "environment").get(pk=token_id)
            audit_record(actor=actor or Actor.system("manage.py"), action="agent_token.revoke",
                         object_type="agent_token", object_id=token.pk, service=token.service,
                         environment=token.environment, from_state="active", to_state="revoked",
                         details={"name": token.name, "prefix": token.prefix})
    with _cache_lock:
        _cache.clear()
    return bool(updated)


def bearer_key(authorization: str) -> str | None:
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip().startswith(KEY_PREFIX):
        return None
    return key.strip()


def agent_for_key(key: str) -> AgentPrincipal | None:
    """The principal for a key, cached briefly so the results endpoint does not hit the database per batch."""
    digest = hash_key(key)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(digest)
        if hit and hit[0] > now:
            return hit[1]
    token = (AgentToken.objects.filter(key_hash=digest, revoked_at__isnull=True)
             .select_related("environment", "service").first())
    principal = None
    if token is not None:
        principal = AgentPrincipal(token_id=token.pk, name=token.name, environment=token.environment.name,
                                   service=token.service.name if token.service_id else None)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (now + _CACHE_SECONDS, principal)
    return principal
