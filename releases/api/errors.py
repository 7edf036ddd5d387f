"""Turn every error a client can cause into a clear 4xx body: {"detail": "...", "code": "...", "errors": {...}}."""
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from releases.errors import DomainError


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
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["errors"] = {exc.field: [exc.message]}
        body.update(exc.extra)
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "request body is too large", "code": "too_large"},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, exceptions.ParseError):
        return Response({"detail": f"malformed request body: {exc.detail}", "code": "parse_error"}, status=400)
    if isinstance(exc, exceptions.ValidationError):
        return Response({"detail": "; ".join(_flatten(exc.detail)), "code": "invalid", "errors": exc.detail},
                        status=400)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data["code"] = getattr(response.data["detail"], "code", "error")
    if response is None and isinstance(exc, Http404):
        return Response({"detail": "not found", "code": "not_found"}, status=404)
    return response


def not_found_handler(request, exception=None):
    """handler404: API paths that match no route answer in the API's error shape, pages with the 404 page."""
    if request.path.startswith(("/api/", "/monitor/", "/metrics/")):
        return JsonResponse({"detail": "not found: no such endpoint or object", "code": "not_found"}, status=404)
    return page_not_found(request, exception)
