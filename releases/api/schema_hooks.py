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
    "415": "the body is not JSON (the API reads application/json only)",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            # DRF reads an empty query parameter (?tag=) as an absent one: say so for the optional ones.
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON, **(WRITES if method != "get" else {}))
            # An error is rendered by the renderer the request chose (?format=csv, the schema's YAML): every media
            # type a success answer offers offers the error too (text bodies as plain strings).
            media_types = ["application/json"] + sorted({
                media_type for status, answer in responses.items() if status.startswith("2")
                for media_type in answer.get("content", {}) if media_type != "application/json"})
            content = {media_type: {"schema": ref if "json" in media_type else {"type": "string"}}
                       for media_type in media_types}
            for status, description in extra.items():
                responses.setdefault(status, {"description": description, "content": content})
    return result
