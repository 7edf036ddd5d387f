"""Tamper-evident audit: a hash chain verified by `manage.py audit_verify`, flagged per row by the API and shown on
the audit page; role changes and agent token changes are audited; the app's database role cannot rewrite it."""
import io
import os

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from releases.choices import Role
from releases.models import AuditEvent
from releases.services import Actor, release_promote
from tests.conftest import client_for


@pytest.fixture(autouse=True)
def no_cached_chain_state():
    cache.delete("audit-chain-state")
    yield
    cache.delete("audit-chain-state")


def tamper(sql, params):
    """What the table owner can do: lift the append-only trigger, change history, put the trigger back."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred FK checks pending in the test transaction
        cursor.execute("ALTER TABLE releases_auditevent DISABLE TRIGGER releases_auditevent_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE releases_auditevent ENABLE TRIGGER releases_auditevent_append_only")


@pytest.fixture
def history(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    return list(AuditEvent.objects.order_by("id"))


def verify() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def test_every_row_links_to_the_one_before(history):
    assert all(event.row_hash for event in history)
    assert [e.prev_hash for e in history[1:]] == [e.row_hash for e in history[:-1]]
    assert verify().startswith(f"audit chain OK: {len(history)} rows, head {history[-1].row_hash}")


def test_a_silently_rewritten_row_is_named_by_audit_verify_and_flagged_by_the_api(history, auditor):
    target = history[2]
    tamper("UPDATE releases_auditevent SET reason = %s WHERE id = %s", ["nothing to see", target.pk])

    with pytest.raises(CommandError, match=f"BROKEN at row #{target.pk}: .*content was changed"):
        verify()
    rows = {row["id"]: row for row in client_for(auditor).get("/api/audit-events/").json()}
    assert rows[target.pk]["integrity"] == "altered"
    assert {row["integrity"] for pk, row in rows.items() if pk != target.pk} == {"ok"}
    page = Client()
    page.force_login(auditor)
    assert f"hash chain BROKEN at row #{target.pk}" in page.get("/audit/").content.decode()


def test_a_deleted_row_breaks_the_link_of_the_next_one(history, auditor):
    gone, after = history[1], history[2]
    tamper("DELETE FROM releases_auditevent WHERE id = %s", [gone.pk])

    with pytest.raises(CommandError, match=f"BROKEN at row #{after.pk}: .*deleted or inserted"):
        verify()
    rows = {row["id"]: row for row in client_for(auditor).get("/api/audit-events/").json()}
    assert rows[after.pk]["integrity"] == "broken_link"


def test_a_truncated_and_rebuilt_table_is_caught_with_the_noted_head(history):
    head = history[-1].row_hash
    out = io.StringIO()
    call_command("audit_verify", "--expect-head", head, stdout=out)
    tamper("DELETE FROM releases_auditevent WHERE id >= %s", [history[-1].pk])
    with pytest.raises(CommandError, match="does not contain the head"):
        call_command("audit_verify", "--expect-head", head, stdout=io.StringIO())


def test_the_audit_page_shows_the_chain_state(history, auditor):
    page = Client()
    page.force_login(auditor)
    html = page.get("/audit/").content.decode()
    assert f"hash chain intact: {AuditEvent.objects.count()} rows" in html


def test_role_changes_in_django_admin_are_audited_with_the_admin(django_user_model, qa):
    admin_user = django_user_model.objects.create_superuser("root", password="pw-root-long")
    admin = Client()
    admin.force_login(admin_user)
    ops = Group.objects.get_or_create(name=Role.OPS)[0]
    form = {"username": "qa", "is_active": "on", "groups": [ops.pk], "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00", "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}

    response = admin.post(f"/admin/auth/user/{qa.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    rows = {(e.action, e.actor_name, tuple(e.details["added"]), tuple(e.details["removed"]))
            for e in AuditEvent.objects.filter(object_type="user", object_id=str(qa.pk))}
    assert ("user.roles_changed", "root", (), ("qa",)) in rows
    assert ("user.roles_changed", "root", ("ops",), ()) in rows


def test_agent_token_creation_and_revocation_are_audited(environments, service):
    out = io.StringIO()
    call_command("routing_agent_token", "create", "--environment", "staging", "--name", "scheduler-bj",
                 stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    created = AuditEvent.objects.get(action="agent_token.create")
    assert created.details["name"] == "scheduler-bj" and key not in str(created.details)
    call_command("routing_agent_token", "revoke", created.object_id, stdout=io.StringIO())
    assert AuditEvent.objects.get(action="agent_token.revoke").object_id == created.object_id


@pytest.mark.django_db(transaction=True)
def test_the_app_role_cannot_lift_the_trigger_truncate_or_rewrite(history):
    role = f"rollgate_app_test_{os.getpid()}"
    call_command("db_app_role", role, stdout=io.StringIO())
    params = connection.get_connection_params()
    try:
        with psycopg.connect(host=params.get("host") or "127.0.0.1", port=params.get("port") or 5432,
                             dbname=params["dbname"], user=role, autocommit=True) as app:
            count = app.execute("SELECT count(*) FROM releases_auditevent").fetchone()[0]
            assert count == len(history)
            for statement in ("ALTER TABLE releases_auditevent DISABLE TRIGGER releases_auditevent_append_only",
                              "TRUNCATE releases_auditevent",
                              "UPDATE releases_auditevent SET reason = 'x'",
                              "DELETE FROM releases_auditevent"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)
            app.execute("SELECT 1 FROM releases_release LIMIT 1")  # the app still works with its tables
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')
