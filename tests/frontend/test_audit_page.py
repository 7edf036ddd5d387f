"""The audit log page: policy-gated, filterable, and exported as streaming CSV."""
import csv
import io

from django.test import Client

from releases.services import Actor, release_reject


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_auditor_filters_the_log_by_actor_action_and_environment(environments, make_release, live_release, qa,
                                                                  auditor):
    prod = make_release("v2.0.0", "prod")
    release_reject(actor=Actor.of(qa), release_id=prod.pk, comment="=HYPERLINK(\"evil\") p95 too high")
    client = logged_in(auditor)
    page = client.get("/audit/").content.decode()
    assert "<td>release.reject</td>" in page and "<td>release.promote</td>" in page
    page = client.get("/audit/", {"actor": "qa"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<td>release.reject</td>" in page and "<td>release.promote</td>" not in page and "<html" not in page
    page = client.get("/audit/", {"action": "release.promote", "environment": "prod"}).content.decode()
    assert "No audit events match." in page
    page = client.get("/audit/", {"service": "agent-infer", "since": "2000-01-01T00:00"}).content.decode()
    assert "<td>release.create</td>" in page


def test_bad_time_filters_are_shown_inline(environments, auditor):
    page = logged_in(auditor).get("/audit/", {"since": "yesterday-ish"}).content.decode()
    assert "<b>since</b>: Enter a valid date/time." in page
    page = logged_in(auditor).get("/audit/", {"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"}).content.decode()
    assert "<b>until</b>: until: must be after since" in page


def test_csv_export_streams_every_matching_event_and_defuses_formulas(environments, make_release, qa, auditor):
    prod = make_release("v1.0.0", "prod")
    release_reject(actor=Actor.of(qa), release_id=prod.pk, comment="=HYPERLINK(\"evil\")")
    response = logged_in(auditor).get("/audit/export.csv", {"environment": "prod"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv" and "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["release.rejected", "release.reject", "pipeline.succeeded",
                                           "release.create"]
    assert rows[1]["reason"] == "'=HYPERLINK(\"evil\")" and rows[1]["environment"] == "prod"


def test_only_roles_with_audit_view_read_the_log(environments, qa, dev):
    for user in (qa, dev):
        response = logged_in(user).get("/audit/export.csv")
        assert response.status_code == 403
        assert "may read the audit log" in response.content.decode()
