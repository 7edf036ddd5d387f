"""Turn every error a client can cause into a clear 4xx body: {"detail": "...", "code": "...", "errors": {...}};
and an outage of what the API stands on (the database, Redis) into a 503 in the same shape, naming what is down."""
import sys

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext
from django.views.defaults import page_not_found, server_error
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from releases.durable import DATABASE_DOWN, CommitOutcomeUnknown
from releases.errors import DomainError

API_PREFIXES = ("/api/", "/monitor/", "/metrics/")
RETRY_AFTER_S = 5


def outage_body(exc: BaseException) -> dict | None:
    """The 503 body for an outage of a component the API needs; None when ``exc`` is not one. The chain of causes
    counts too: a session read that fails on a dead connection surfaces as another error raised while handling it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        body = _outage_of(exc)
        if body is not None:
            return body
        exc = exc.__cause__ or exc.__context__
    return None


def _outage_of(exc: BaseException) -> dict | None:
    if isinstance(exc, CommitOutcomeUnknown):
        return {"detail": gettext("the database connection broke while your change was being saved, and whether "
                                  "it was stored cannot be known yet: reload and check before trying again"),
                "code": "commit_outcome_unknown", "unavailable": "database"}
    if isinstance(exc, DATABASE_DOWN):
        return {"detail": gettext("the database is unavailable; nothing was changed. Try again in a few seconds"),
                "code": "service_unavailable", "unavailable": "database"}
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return {"detail": gettext("Redis (cache and live events) is unavailable; nothing was changed. Try again "
                                  "in a few seconds"), "code": "service_unavailable", "unavailable": "redis"}
    return None


def _flatten(errors, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out = []
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else f"{prefix}{key}"
            out += _flatten(value, f"{name}." if name else "")
        return out
    if isinstance(errors, list):
        out = []
        for index, value in enumerate(errors):
            if isinstance(value, (dict, list)):
                out += _flatten(value, f"{prefix.rstrip('.')}[{index}].")
            else:
                out.append(f"{prefix.rstrip('.')}: {value}" if prefix else str(value))
        return out
    return [f"{prefix.rstrip('.')}: {errors}" if prefix else str(errors)]


def exception_handler(exc, context):
    outage = outage_body(exc)
    if outage is not None:
        return Response(outage, status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
        body.update(exc.extra)
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": gettext("request body is too large"), "code": "too_large"},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, exceptions.ParseError):
        return Response({"detail": gettext("malformed request body: %(why)s") % {"why": exc.detail},
                         "code": "parse_error"}, status=400)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"detail": "; ".join(_flatten(exc.detail)), "code": "invalid", "errors": exc.detail},
                        status=400)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data["code"] = getattr(response.data["detail"], "code", "error")
    if response is None and isinstance(exc, Http404):
        return Response({"detail": gettext("not found"), "code": "not_found"}, status=404)
    return response


def not_found_handler(request, exception=None):
    """handler404: API paths that match no route answer in the API's error shape, pages with the 404 page."""
    if request.path.startswith(("/api/", "/monitor/", "/metrics/")):
        return JsonResponse({"detail": gettext("not found: no such endpoint or object"), "code": "not_found"},
                            status=404)
    return page_not_found(request, exception)


def server_error_handler(request):
    """handler500: an outage answers 503 naming what is down (JSON on API paths, the 503 page elsewhere) instead of
    a 500; other errors keep the 500 page (JSON on API paths). Called while the exception is being handled."""
    exc = sys.exc_info()[1]
    outage = outage_body(exc) if exc is not None else None
    api = request.path.startswith(API_PREFIXES)
    if outage is not None:
        if api:
            response = JsonResponse(outage, status=503)
        else:
            response = HttpResponse(loader.render_to_string("503.html", {"outage": outage}), status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    if api:
        return JsonResponse({"detail": gettext("internal error; it was logged"), "code": "server_error"},
                            status=500)
    return server_error(request)
