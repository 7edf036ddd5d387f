"""The OpenAPI schema at /api/schema/ describes every endpoint: generating it raises no warning or error."""
from django.core.management import call_command


def test_schema_generates_without_warnings_and_validates(db, tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in ("/api/releases/{release_id}/promote/", "/api/agents/register", "/api/sla/reports/",
                 "/api/releases/{release_id}/pipeline/", "/api/environments/{env}/credentials/"):
        assert path in text, path


def test_pipeline_and_deploy_answers_are_described_not_free_form_objects(db, tmp_path):
    import yaml

    target = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    loose = []
    for path, operations in schema["paths"].items():
        if not any(part in path for part in ("/pipeline", "/pipelines/", "/webhooks/", "/values", "/revisions",
                                             "/credentials")):
            continue
        for method, operation in operations.items():
            for code, answer in (operation.get("responses") or {}).items():
                for media, body in (answer.get("content") or {}).items():
                    if media == "application/json" and body.get("schema", {}).get("type") == "object" \
                            and "properties" not in body["schema"] and "$ref" not in body["schema"]:
                        loose.append(f"{method.upper()} {path} {code}")
    assert loose == []
