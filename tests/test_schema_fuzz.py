"""schemathesis over the whole OpenAPI schema, in-process through the WSGI app: a bounded number of generated
requests per operation (positive and negative data), as a person who holds every role. No operation may answer
5xx. Every operation documents the common error answers (releases/api/schema_hooks.py); full response
conformance (case.validate_response) is not asserted yet: schemathesis still finds schema-valid values the views
refuse (e.g. status filters) and Django's HTML 404 for paths no route matches."""
import json

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings

from releases.choices import Role
from releases.services import api_token_issue
from tests.conftest import make_user

MAX_EXAMPLES = 5

raw = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
schema = schemathesis.openapi.from_dict(raw)
schema.app = get_wsgi_application()
# The routing table long-polls (?wait= up to 30 s): covered by tests/routing, not worth minutes of fuzzing here.
schema = schema.exclude(path_regex=r"^/api/routing/\{service\}/\{environment\}/$", method="GET")


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """As django.test.Client does: the WSGI handler must not close the test transaction's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def headers(environments, live_release):
    from django.core.cache import cache

    cache.clear()  # the token endpoint's per-address rate
    everyone = make_user("fuzz-all-roles", *Role.values)
    return {"Authorization": f"Token {api_token_issue(user=everyone)}"}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx(case, headers):
    response = case.call(headers=headers)
    assert response.status_code < 500, (f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                        f"{response.text[:300]}")
