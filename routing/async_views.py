"""The hot endpoints, as async Django views: the long-polled routing table, trace results, the metrics scrape.

GET /api/routing/<service>/<env>/?wait=N   If-None-Match: <etag>
    200 + ETag at once when the table differs from the client's; otherwise the request is held until the table
    changes (200) or N seconds pass (304). N is capped at ROLLGATE_ROUTING_MAX_WAIT_SECONDS (30).
POST /api/traces/results?service=&environment=   body: JSON list of at most 1000 results
    (or {"service", "environment", "items": [...]}); answers rollgate_client.results.batch_response.
GET /metrics/traces                         Prometheus text format, read from Redis at scrape time.
"""
from __future__ import annotations

import asyncio
import gzip
import hmac
import json
import threading
import time

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from releases import policy
from releases.models import AgentService, Environment
from rollgate_client.results import BatchRejectedError, batch_response, validate_batch
from routing import auth, metrics, notify, prices, selectors

# A long-poll re-reads the table at least this often even without a notification (a lost publish, Redis down).
RECHECK_SECONDS = 5.0


def _error(status: int, detail: str, code: str, field: str | None = None, **headers) -> JsonResponse:
    body = {"detail": detail, "code": code}
    if field:
        body["errors"] = {field: [detail]}
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


_UNAUTHENTICATED = dict(
    status=401, code="not_authenticated",
    detail="send an agent token (Authorization: Bearer rgat_...) or, for people, Authorization: Token <key>",
    WWW_Authenticate='Bearer realm="rollgate-agents"',
)


def _human_token_user(key: str):
    from rest_framework.authtoken.models import Token

    from releases.tokens import token_digest

    token = Token.objects.select_related("user").filter(key=token_digest(key)).first()
    return token.user if token and token.user.is_active else None


async def _authorize_read(request, service: str, environment: str) -> JsonResponse | None:
    """None when the caller may read this table; otherwise the error response."""
    header = request.headers.get("Authorization", "")
    scheme = header.partition(" ")[0].lower()
    if scheme == "bearer":
        key = auth.bearer_key(header)
        principal = await sync_to_async(auth.agent_for_key)(key) if key else None
        if principal is None:
            return _error(401, "invalid or revoked agent token", "authentication_failed",
                          WWW_Authenticate='Bearer realm="rollgate-agents"')
        if not principal.may_access(service, environment):
            return _error(403, principal.scope_error(service, environment), "forbidden")
        return None
    if scheme == "token":
        user = await sync_to_async(_human_token_user)(header.partition(" ")[2].strip())
        if user is None:
            return _error(401, "invalid token", "authentication_failed")
    else:
        user = await request.auser()
        if not user.is_authenticated:
            return _error(**_UNAUTHENTICATED)
    decision = await sync_to_async(policy.can)(user, policy.RELEASE_VIEW)
    if not decision:
        return _error(403, decision.reason, "forbidden")
    return None


def _etag_matches(if_none_match: str, etag: str) -> bool:
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag or candidate == "*":
            return True
    return False


def _table_now(service: str, environment: str):
    try:
        table = selectors.routing_table(service=service, environment=environment)
    except selectors.NoTable as error:
        return None, str(error)
    return table, ""


async def routing_table(request, service: str, environment: str):
    if request.method != "GET":
        return _error(405, "use GET", "method_not_allowed", Allow="GET")
    refused = await _authorize_read(request, service, environment)
    if refused is not None:
        return refused
    raw_wait = request.GET.get("wait", "0")
    try:
        wait = float(raw_wait)
        if not 0 <= wait < float("inf"):
            raise ValueError
    except ValueError:
        return _error(400, f"wait: must be a number of seconds from 0 to {settings.ROLLGATE_ROUTING_MAX_WAIT_SECONDS},"
                           f" got {raw_wait[:20]!r}", "invalid", field="wait")
    wait = min(wait, settings.ROLLGATE_ROUTING_MAX_WAIT_SECONDS)
    if_none_match = request.headers.get("If-None-Match", "")
    deadline = time.monotonic() + wait
    key = notify.table_key(service, environment)
    hub = notify.hub() if wait > 0 else None
    while True:
        # Register before reading: a change committed between the read and the wait still wakes us.
        future = await hub.register(key) if hub is not None else None
        try:
            table, missing = await sync_to_async(_table_now)(service, environment)
            if table is None:
                return _error(404, missing, "not_found")
            etag = table.etag
            remaining = deadline - time.monotonic()
            if not _etag_matches(if_none_match, etag):
                response = HttpResponse(table.to_json(), content_type="application/json")
                response["ETag"] = etag
                response["Cache-Control"] = "no-cache"
                return response
            if remaining <= 0 or future is None:
                response = HttpResponse(status=304)
                response["ETag"] = etag
                return response
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout=min(remaining, RECHECK_SECONDS))
            except asyncio.TimeoutError:
                pass
        finally:
            if future is not None:
                hub.discard(key, future)
                future.cancel()


# --- trace results --------------------------------------------------------------------------------------------

_versions_cache: dict[int, tuple[float, set[str]]] = {}
_versions_lock = threading.Lock()
_VERSIONS_CACHE_SECONDS = 10.0


def _scope(service: str, environment: str):
    """(service, environment) objects or None, cached with the service's known versions."""
    service_obj = AgentService.objects.filter(name=service).only("pk", "name").first()
    env_obj = Environment.objects.filter(name=environment).only("pk", "name").first()
    return service_obj, env_obj


def _known_versions(service_obj, wanted: set[str]) -> set[str]:
    now = time.monotonic()
    with _versions_lock:
        hit = _versions_cache.get(service_obj.pk)
    if hit and hit[0] > now and wanted <= hit[1]:
        return hit[1]
    versions = selectors.known_versions(service_obj)
    with _versions_lock:
        _versions_cache[service_obj.pk] = (now + _VERSIONS_CACHE_SECONDS, versions)
    return versions


_scope_cache: dict[tuple[str, str], tuple[float, object, object]] = {}


def _scope_cached(service: str, environment: str):
    now = time.monotonic()
    hit = _scope_cache.get((service, environment))
    if hit and hit[0] > now:
        return hit[1], hit[2]
    service_obj, env_obj = _scope(service, environment)
    if len(_scope_cache) > 1000:
        _scope_cache.clear()
    _scope_cache[(service, environment)] = (now + _VERSIONS_CACHE_SECONDS, service_obj, env_obj)
    return service_obj, env_obj


_redis_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def _redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _redis_clients.get(loop)
    if client is None:
        for old in [other for other in _redis_clients if other.is_closed()]:
            del _redis_clients[old]
        client = _redis_clients[loop] = aioredis.Redis.from_url(settings.REDIS_URL)
    return client


@csrf_exempt
async def trace_results(request):
    if request.method != "POST":
        return _error(405, "use POST", "method_not_allowed", Allow="POST")
    header = request.headers.get("Authorization", "")
    key = auth.bearer_key(header)
    principal = await sync_to_async(auth.agent_for_key)(key) if key else None
    if principal is None:
        if header:
            return _error(401, "invalid or revoked agent token", "authentication_failed",
                          WWW_Authenticate='Bearer realm="rollgate-agents"')
        return _error(401, "send an agent token: Authorization: Bearer rgat_...", "not_authenticated",
                      WWW_Authenticate='Bearer realm="rollgate-agents"')
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as error:
        return _error(400, f"malformed request body: not JSON ({error})", "parse_error")
    service = request.GET.get("service", "")
    environment = request.GET.get("environment", "")
    items = body
    if isinstance(body, dict):
        unknown = sorted(set(body) - {"service", "environment", "items"})
        if unknown:
            return _error(400, f"unknown field(s) {', '.join(unknown)}; accepted: service, environment, items",
                          "invalid", field=unknown[0])
        service = body.get("service", service)
        environment = body.get("environment", environment)
        items = body.get("items")
    for name, value in (("service", service), ("environment", environment)):
        if not isinstance(value, str) or not value:
            return _error(400, f"{name}: is required (query parameter or body field)", "invalid", field=name)
    if not principal.may_access(service, environment):
        return _error(403, principal.scope_error(service, environment), "forbidden")
    try:
        valid, errors = validate_batch(items)
    except BatchRejectedError as error:
        return _error(400, str(error), "invalid", field="items")
    service_obj, env_obj = await sync_to_async(_scope_cached)(service, environment)
    if service_obj is None or env_obj is None:
        return _error(404, f"no service '{service[:80]}' in environment '{environment[:30]}'", "not_found")

    # A version Rollgate does not know would make a new metric series forever: report it, keep the rest.
    wanted = {result.version for result in valid}
    known = await sync_to_async(_known_versions)(service_obj, wanted)
    if not wanted <= known:
        kept = []
        index_of_valid = [index for index in range(len(items)) if index not in errors]
        for index, result in zip(index_of_valid, valid):
            if result.version in known:
                kept.append(result)
            else:
                errors[index] = [f"items[{index}].version: {result.version[:100]!r} is not a version of "
                                 f"{service_obj.name} known to Rollgate"]
        valid = kept
    if valid:
        valid = prices.price_results(valid, prices.configured_table())  # cost from tokens where only they came
        ints, sums = metrics.aggregate(service_obj.name, env_obj.name, valid)
        pipe = _redis().pipeline(transaction=False)
        metrics.record(pipe, ints, sums, time.time())
        try:
            await pipe.execute()
        except Exception:  # noqa: BLE001 - nothing was kept: say so, the sender retries the batch
            return _error(503, "trace results store (Redis) unavailable; retry the batch later", "unavailable")
    return JsonResponse(batch_response(valid, errors), status=200)


async def trace_metrics(request):
    token = settings.ROLLGATE_METRICS_TOKEN
    if not token and not settings.ROLLGATE_METRICS_OPEN:
        return _error(403, "this scrape endpoint is closed: set ROLLGATE_METRICS_TOKEN (Prometheus sends it as a "
                      "bearer token) or open it explicitly with ROLLGATE_METRICS_OPEN=1", "metrics_closed")
    given = request.headers.get("Authorization", "")
    if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _error(401, "this scrape endpoint needs Authorization: Bearer <ROLLGATE_METRICS_TOKEN>",
                      "not_authenticated", WWW_Authenticate='Bearer realm="rollgate-metrics"')
    redis = _redis()
    try:
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(metrics.HASH_KEY)
        pipe.hgetall(metrics.SEEN_KEY)
        raw, seen = await pipe.execute()
        now = time.time()
        raw, stale_fields, gone, unstamped = metrics.expire(raw, seen, now,
                                                            settings.ROLLGATE_TRACE_SERIES_RETENTION_SECONDS)
        if stale_fields or gone or unstamped:
            pipe = redis.pipeline(transaction=False)
            if stale_fields:
                pipe.hdel(metrics.HASH_KEY, *stale_fields)
            if gone:
                pipe.hdel(metrics.SEEN_KEY, *gone)
            if unstamped:
                pipe.hset(metrics.SEEN_KEY, mapping={label: int(now) for label in unstamped})
            await pipe.execute()
    except Exception:  # noqa: BLE001
        return HttpResponse("# trace results store (Redis) unavailable\n", status=503, content_type="text/plain")
    body = metrics.render(raw).encode()
    response = HttpResponse(content_type="text/plain; version=0.0.4; charset=utf-8")
    # Prometheus asks for gzip; thousands of label sets compress about tenfold.
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = gzip.compress(body, compresslevel=5)
        response["Content-Encoding"] = "gzip"
    response["Vary"] = "Accept-Encoding"
    response.content = body
    return response
