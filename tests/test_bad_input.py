"""Bad input is a 400 naming the field and the rule on every write endpoint, never a 500: NUL characters, lone
surrogates, over-deep nesting and over-long strings in JSON bodies, NUL in query parameters, and YAML aliases
(billion laughs) in values files. The sweep walks every write operation of the OpenAPI schema."""
import json
import re

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from releases.api.input_rules import MAX_DEPTH, MAX_STRING
from releases.choices import Role
from tests.conftest import make_user

BAD_STRINGS = {
    "NUL": ("a\x00b", "NUL characters"),
    "lone surrogate": ("a\ud800b", "lone surrogate"),
    "over-long": ("x" * (MAX_STRING + 1), f"at most {MAX_STRING} characters"),
}
PATH_VALUES = {"service": "agent-infer", "environment": "staging", "name": "staging", "version": "v1.0.0"}


@pytest.fixture
def everyone(db):
    return make_user("root-of-all-roles", *Role.values)


@pytest.fixture
def api(everyone, environments, live_release):
    client = APIClient()
    client.force_authenticate(everyone)
    cache.clear()
    return client


def write_operations(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, item in schema["paths"].items():
        for method in ("post", "put", "patch"):
            operation = item.get(method)
            if operation is None:
                continue
            body = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            url = re.sub(r"\{(\w+)\}", lambda m: str(PATH_VALUES.get(m.group(1), 1)), path)
            yield method, url, body, schema


def first_field(body, schema) -> str:
    ref = (body or {}).get("schema", {}).get("$ref", "")
    component = (schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref
                 else (body or {}).get("schema", {}))
    return next(iter(component.get("properties", {})), "comment")


def send(client, method, url, document):
    raw = json.dumps(document)  # keeps lone surrogates as \ud800 escapes, as a client would send them
    return getattr(client, method)(url, data=raw, content_type="application/json")


def test_every_write_endpoint_answers_400_naming_the_field(api):
    failures, checked, answered_400 = [], 0, 0
    for method, url, body, schema in write_operations(api):
        field = first_field(body, schema)
        cases = {name: ({field: value}, rule) for name, (value, rule) in BAD_STRINGS.items()}
        deep = "leaf"
        for _ in range(MAX_DEPTH + 2):
            deep = [deep]
        cases["deep nesting"] = ({field: deep}, f"nested more than {MAX_DEPTH} levels")
        for name, (document, rule) in cases.items():
            response = send(api, method, url, document)
            checked += 1
            if response.status_code in (401, 403) and ("agents" in url or "webhooks" in url or "alerts/" in url):
                continue  # refused before the body is read: the caller is not an agent / GitLab / Alertmanager
            if response.status_code == 404:
                continue  # the fixture has no such object (a pipeline, a webhook): looked up before the body
            answered_400 += 1
            ok = response.status_code == 400 and rule in response.content.decode() and field in response.json().get(
                "errors", {}).__repr__()
            if not ok:
                failures.append(f"{method.upper()} {url} {name}: {response.status_code} {response.content[:160]!r}")
    assert checked > 40 and answered_400 > 30
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", sorted(BAD_STRINGS))
def test_bad_strings_in_query_parameters_are_400(api, name):
    value, rule = BAD_STRINGS[name]
    if name == "lone surrogate":
        pytest.skip("a URL cannot carry a lone surrogate: percent-decoding gives U+FFFD, which is valid")
    response = api.get("/api/releases/", {"service": value})
    assert response.status_code == 400 and response.json()["errors"] == {"service": [response.json()["errors"]
                                                                                      ["service"][0]]}
    assert rule in response.json()["detail"]


def test_nul_in_a_path_parameter_is_400_not_500(api):
    response = api.delete("/api/routing/agent-infer/staging/blocked-versions/v1%00x/")
    assert response.status_code == 400


ALIAS_BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
"""


def test_a_yaml_alias_bomb_is_refused_with_400(api):
    response = api.put("/api/services/agent-infer/values/", {"text": ALIAS_BOMB, "comment": "lol"}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert "aliases" in response.json()["detail"] and len(response.content) < 2000


def properties(body, schema) -> dict:
    ref = (body or {}).get("schema", {}).get("$ref", "")
    component = (schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}) if ref
                 else (body or {}).get("schema", {}))
    return component.get("properties", {})


def test_strings_longer_than_their_column_are_400_on_every_field_never_500(api):
    """Below the parser's cap but above what a column holds (varchar(30) environment names, 500-char reasons)."""
    failures = []
    for method, url, body, schema in write_operations(api):
        for field, spec in properties(body, schema).items():
            if spec.get("type") not in (None, "string") or spec.get("readOnly"):
                continue
            response = send(api, method, url, {field: "y" * 5000})
            if response.status_code >= 500:
                failures.append(f"{method.upper()} {url} {field}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_an_api_path_that_matches_no_route_answers_json_404(api):
    response = api.get("/api/no-such-thing/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    page = api.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_form_body_is_refused_with_415_saying_json_is_expected(api):
    """The API reads JSON only (and its schema says so): a form post is refused, never half-read."""
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, item in schema["paths"].items():
        for method in ("post", "put", "patch"):
            if method in item:
                assert set(item[method].get("requestBody", {}).get("content", {})) <= {"application/json"}, path
                assert "415" in item[method]["responses"], f"{method.upper()} {path}: 415 not documented"
    response = api.post("/api/releases/", {"service": "agent-infer", "environment": "staging", "tag": "v9"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]
