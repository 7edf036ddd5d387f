"""The audit log page: policy-gated, filterable, and exported as streaming CSV."""
import csv
import io
import json
import re
from datetime import datetime

from asgiref.sync import async_to_sync
from django.test import Client

from frontend import audit_views
from releases.models import AuditEvent

from releases.services import Actor, release_reject


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body_of(response) -> str:
    """Read a streamed response the way the ASGI server does: chunk by chunk, asynchronously."""
    assert response.is_async, "a synchronous iterator is buffered whole under ASGI"

    async def read():
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)().decode()


def add_events(count: int) -> None:
    """Events written in bulk share one timestamp: pages and export chunks must still split them by id."""
    AuditEvent.objects.bulk_create(AuditEvent(actor_name="bulk", action="bulk.write", object_type="test",
                                              object_id=str(i), reason=f"row {i}") for i in range(count))


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
    rows = list(csv.DictReader(io.StringIO(body_of(response))))
    assert [r["action"] for r in rows] == ["release.rejected", "release.reject", "pipeline.succeeded",
                                           "release.create"]
    assert rows[1]["reason"] == "'=HYPERLINK(\"evil\")" and rows[1]["environment"] == "prod"


def test_only_roles_with_audit_view_read_the_log(environments, qa, dev):
    for user in (qa, dev):
        response = logged_in(user).get("/audit/export.csv")
        assert response.status_code == 403
        assert "may read the audit log" in response.content.decode()


def test_export_reads_in_chunks_and_still_sends_every_event_once(environments, auditor, monkeypatch):
    monkeypatch.setattr(audit_views, "EXPORT_CHUNK", 7)
    add_events(30)
    rows = list(csv.DictReader(io.StringIO(body_of(logged_in(auditor).get("/audit/export.csv",
                                                                          {"action": "bulk.write"})))))
    assert sorted(int(r["object_id"]) for r in rows) == list(range(30))
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)
    newest = AuditEvent.objects.get(pk=rows[0]["id"])
    assert datetime.fromisoformat(rows[0]["created_at"]) == newest.created_at
    assert json.loads(rows[0]["details"]) == newest.details


def test_one_user_cannot_run_two_exports_at_once(environments, auditor):
    from django.core.cache import cache

    cache.delete(f"audit-export:{auditor.pk}")  # a lock an interrupted earlier run may have left (60 s)
    client = logged_in(auditor)
    first = client.get("/audit/export.csv")
    second = client.get("/audit/export.csv")
    assert second.status_code == 409 and "still running" in second.content.decode()
    body_of(first)  # the first export finishes: the next one may start
    third = client.get("/audit/export.csv")
    assert third.status_code == 200
    body_of(third)


def test_audit_pages_follow_older_links_without_counting(environments, auditor):
    add_events(230)
    client = logged_in(auditor)
    page = client.get("/audit/", {"action": "bulk.write"}).content.decode()
    seen = []
    for _ in range(5):
        seen += [int(n) for n in re.findall(r"<td>test (\d+)</td>", page)]
        older = re.search(r'href="\?([^"]*cursor=[^"]+)">older', page)
        if older is None:
            break
        page = client.get("/audit/?" + older.group(1).replace("&amp;", "&")).content.decode()
    assert sorted(seen) == list(range(230)) and len(seen) == 230
    assert "newest" in page and "page 1 of" not in page
    bad = client.get("/audit/", {"cursor": "garbage"})
    assert bad.status_code == 400 and "cursor" in bad.content.decode()
