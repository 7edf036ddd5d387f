"""GET /metrics (Rollgate's own work, Prometheus text format), GET /api/health/live and /api/health/ready."""
import hmac

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from observability.collector import RollgateCollector

_registry = CollectorRegistry(auto_describe=False)
_registry.register(RollgateCollector())


def _error(status: int, detail: str, code: str, **headers) -> JsonResponse:
    response = JsonResponse({"detail": detail, "code": code}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


@require_GET
def metrics(request):
    """Same access rule as /metrics/traces: ROLLGATE_METRICS_TOKEN as a bearer token, or explicitly open."""
    token = settings.ROLLGATE_METRICS_TOKEN
    if not token and not settings.ROLLGATE_METRICS_OPEN:
        return _error(403, "this scrape endpoint is closed: set ROLLGATE_METRICS_TOKEN (Prometheus sends it as a "
                      "bearer token) or open it explicitly with ROLLGATE_METRICS_OPEN=1", "metrics_closed")
    given = request.headers.get("Authorization", "")
    if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _error(401, "this scrape endpoint needs Authorization: Bearer <ROLLGATE_METRICS_TOKEN>",
                      "not_authenticated", **{"WWW-Authenticate": 'Bearer realm="rollgate-metrics"'})
    return HttpResponse(generate_latest(_registry), content_type=CONTENT_TYPE_LATEST)


@require_GET
def live(request):
    """Liveness: the process answers HTTP. Never looks at the database or Redis, so an outage of either does not
    make Kubernetes restart every pod (readiness takes the pod out of the Service instead)."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # noqa: BLE001 - this endpoint exists to say what is down
        return f"down: {type(error).__name__}"


def _check_redis() -> str:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1).ping()
        return "ok"
    except Exception as error:  # noqa: BLE001
        return f"down: {type(error).__name__}"


@require_GET
def ready(request):
    """Readiness: 200 when the database and Redis answer, 503 naming what is down."""
    checks = {"database": _check_database(), "redis": _check_redis()}
    down = [name for name, state in checks.items() if state != "ok"]
    return JsonResponse({"status": "ok" if not down else "unavailable", "checks": checks, "down": down},
                        status=503 if down else 200)
