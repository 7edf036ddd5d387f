"""schemathesis over the whole OpenAPI schema, in-process through the WSGI app: a bounded number of generated
requests per operation (positive and negative data), as a person who holds every role.

Every answer is validated against the schema (case.call_and_validate, all of schemathesis' default checks): no
5xx, the status code is documented, the content type is documented, the body matches the documented schema, a
request the schema allows is not refused with 400 and a request the schema forbids is not accepted. The schema is
made to say the views' real rules (enums and patterns of filters, non-blank strings, no unknown fields, JSON only);
the few rules JSON Schema cannot say are listed below, each with its reason, and only that one check is left out
for that one operation."""
import json
import os

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from releases.choices import Role
from releases.services import api_token_issue
from tests.conftest import make_user

MAX_EXAMPLES = int(os.environ.get("ROLLGATE_FUZZ_EXAMPLES", "5"))  # more for a deeper run by hand

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


# Schema-valid requests an operation may still refuse with 400, because the rule is not one JSON Schema can say.
REFUSES_SOME_VALID = {
    "POST /api/releases/": "service and environment must name existing ones (data, not schema)",
    "PATCH /api/environments/{name}/": "freeze windows: end after start, 'to' after 'from' (rules across fields)",
    "PUT /api/routing/{service}/{environment}/rules/": "gray rule lists must hold known tenants/regions... and at "
                                                       "least one list must be non-empty (data and cross-field)",
    **{f"GET {path}": "cursor is an opaque position from a Link header (a made-up one is refused), and cursor and "
                      "offset exclude each other" for path in ("/api/releases/", "/api/audit-events/",
                                                                "/api/sla/reports/",
                                                                "/api/notifications/deliveries/")},
    "POST /api/notifications/subscriptions/": "environments must name existing ones (data, not schema); "
                                              "format: uri allows URLs Django's URLValidator refuses",
    "PATCH /api/notifications/subscriptions/{subscription_id}/": "as POST: environments must exist; uri format",
    "POST /api/webhook-endpoints/": "format: uri allows URLs Django's URLValidator refuses (a host label longer "
                                    "than 63 characters)",
    "POST /api/sla/policies/{environment}/backtest/": "the candidate policy's fields and ranges are sla.policy's "
                                                      "rules (known names, cross-field limits), and the environment "
                                                      "must exist (data, not schema)",
}
# Schema-violating requests an operation accepts, because DRF reads input leniently.
ACCEPTS_SOME_INVALID = {
    "POST /api/services/": "DRF's CharField reads a number as its text (0 -> \"0\")",
    "POST /api/webhook-endpoints/": "DRF's BooleanField reads 0/1 (and \"true\"/\"false\") as booleans",
    "GET /api/schema/": "lang (offered by drf-spectacular once i18n is on): an unknown code falls back to the "
                        "default language instead of a 400",
    "POST /api/notifications/subscriptions/": "DRF's BooleanField reads 0/1 as booleans; CharField reads numbers",
    "PATCH /api/notifications/subscriptions/{subscription_id}/": "as POST: lenient booleans and strings",
}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_schema(case, headers):
    operation = f"{case.method} {case.path}"
    excluded = []
    if operation in REFUSES_SOME_VALID:
        excluded.append(positive_data_acceptance)
    if operation in ACCEPTS_SOME_INVALID:
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers=headers, excluded_checks=excluded)


def test_the_exceptions_name_real_operations():
    """An exception for an operation that no longer exists would hide nothing and mislead: keep the lists exact."""
    operations = {f"{op.method.upper()} {op.path}" for op in schema.get_all_operations()
                  for op in [op.ok()]}
    assert set(REFUSES_SOME_VALID) | set(ACCEPTS_SOME_INVALID) <= operations
