"""What every JSON body must satisfy before any serializer sees it: no NUL characters (PostgreSQL cannot store
them), no lone surrogates (not encodable as UTF-8), at most MAX_DEPTH levels of nesting, and no string longer than
MAX_STRING characters. A breach is a 400 naming the field path and the rule, never a 500 from the database."""
from django.http import JsonResponse
from rest_framework import serializers

MAX_DEPTH = 32
MAX_STRING = 65536  # the largest text field Rollgate takes is a values file of 64 KiB


def _problem(text: str) -> str:
    if "\x00" in text:
        return "NUL characters (\\u0000) are not accepted"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "lone surrogate characters (\\ud800-\\udfff without a pair) are not accepted"
    if len(text) > MAX_STRING:
        return f"at most {MAX_STRING} characters"
    return ""


def check_document(data, path: str = "", depth: int = 0) -> None:
    """Raise serializers.ValidationError({field path: [rule]}) at the first breach."""
    where = path or "(body)"
    if depth > MAX_DEPTH:
        raise serializers.ValidationError({where: [f"nested more than {MAX_DEPTH} levels deep"]})
    if isinstance(data, str):
        problem = _problem(data)
        if problem:
            raise serializers.ValidationError({where: [problem]})
    elif isinstance(data, dict):
        for key, value in data.items():
            problem = _problem(str(key))
            if problem:
                raise serializers.ValidationError({f"{path}.(key)" if path else "(key)": [f"a key: {problem}"]})
            check_document(value, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            check_document(value, f"{path}[{index}]", depth + 1)


def query_problem(request) -> tuple[str, str] | None:
    """(field, rule) for the first bad path or query parameter: NUL characters reach the database otherwise."""
    if "\x00" in request.path:
        return "(path)", "NUL characters are not accepted"
    for key, values in request.GET.lists():
        for value in [key, *values]:
            problem = _problem(value)
            if problem:
                return key[:60].replace("\x00", ""), problem
    return None


class QueryGuardMiddleware:
    """400 for a NUL character (or a lone surrogate, or an over-long value) in the path or a query parameter,
    for pages and API alike, before a view passes it to the database."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = query_problem(request)
        if problem is not None:
            field, rule = problem
            return JsonResponse({"detail": f"{field}: {rule}", "code": "invalid", "errors": {field: [rule]}},
                                status=400)
        return self.get_response(request)
