"""drf-spectacular postprocessing: every operation documents the error answers every view can give, in the one
error shape of releases/api/errors.py, so schema-driven clients (and the schemathesis run in the test suite) know
every status code an endpoint returns."""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "what rule, in words"},
        "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True,
                   "description": "field path -> messages (bad input)"},
    },
    "required": ["detail"],
    "additionalProperties": True,
}

COMMON = {
    "400": "bad input: the field and the rule are named",
    "401": "not logged in (no or unknown token / session)",
    "403": "your role (or the caller) may not do this",
    "404": "no such object, or none you may see",
    "429": "too many requests (login throttle, lockout)",
}
WRITES = {
    "409": "the state or a rule forbids it now (transition, approvals, freeze window, blocked image)",
    "413": "request body too large",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON, **(WRITES if method != "get" else {}))
            for status, description in extra.items():
                responses.setdefault(status, {"description": description,
                                              "content": {"application/json": {"schema": ref}}})
    return result
