"""make test runs every Rollgate process it starts (web, workers, beat, the demo stack) as the app role, not as the
owner (issue 14): the URL those processes get cannot truncate, cannot disable the audit trigger and cannot
rewrite audit rows, while the app's own writes work."""
import psycopg
import pytest
from django.db import connection

from tests.conftest import APP_ROLE, app_database_url

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="roles exist on PostgreSQL only")]


def as_app(sql: str):
    with psycopg.connect(app_database_url().replace("postgres://", "postgresql://"), autocommit=True) as conn:
        return conn.execute(sql).fetchall() if sql.lstrip().upper().startswith("SELECT") else conn.execute(sql)


def test_started_processes_connect_as_the_app_role(live_release):
    assert APP_ROLE in app_database_url() and connection.settings_dict["USER"] != APP_ROLE
    assert as_app("SELECT current_user") == [(APP_ROLE,)]
    assert as_app("SELECT count(*) FROM releases_release")[0][0] >= 1  # reads what the app needs


@pytest.mark.parametrize("statement", [
    "TRUNCATE releases_auditevent",
    "TRUNCATE releases_release CASCADE",
    "ALTER TABLE releases_auditevent DISABLE TRIGGER USER",
    "UPDATE releases_auditevent SET reason = 'rewritten'",
    "DELETE FROM releases_auditevent",
])
def test_the_app_role_cannot_rewrite_history(live_release, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_app(statement)
