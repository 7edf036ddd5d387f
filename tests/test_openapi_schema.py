"""The OpenAPI schema at /api/schema/ describes every endpoint: generating it raises no warning or error."""
from django.core.management import call_command


def test_schema_generates_without_warnings_and_validates(db, tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in ("/api/releases/{release_id}/promote/", "/api/agents/register", "/api/sla/reports/",
                 "/api/releases/{release_id}/pipeline/", "/api/environments/{env}/credentials/"):
        assert path in text, path
