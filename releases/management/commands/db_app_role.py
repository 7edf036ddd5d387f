"""Create (or refresh) the PostgreSQL role the app runs under, as the owner role that ran the migrations.

The owner role owns the tables: it alone may ALTER them (disable the audit trigger) or TRUNCATE them. The app role
gets only what the app needs: read and write on every table, except the audit trail, which it may read and append
to (no UPDATE, DELETE or TRUNCATE; the append-only trigger refuses UPDATE/DELETE on top of that). Run it after
every `migrate` (new tables need their grants):

    DATABASE_URL=postgres://owner@db/rollgate python manage.py migrate
    DATABASE_URL=postgres://owner@db/rollgate python manage.py db_app_role rollgate_app --password-file /run/secrets/app
    DATABASE_URL=postgres://rollgate_app@db/rollgate  (web, worker, beat)
"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql

AUDIT_TABLE = "releases_auditevent"


class Command(BaseCommand):
    help = "Create/refresh the app's database role: no ownership, no TRUNCATE, audit rows append-only."

    def add_arguments(self, parser):
        parser.add_argument("role")
        parser.add_argument("--password-file", default="", help="file holding the role's password (LOGIN)")

    def handle(self, *args, role, password_file, **options):
        if connection.vendor != "postgresql":
            raise CommandError("db_app_role is for PostgreSQL (SQLite has no roles)")
        password = Path(password_file).read_text().strip() if password_file else None
        ident = sql.Identifier(role)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION")
                               .format(ident).as_string(cursor.connection))
            if password is not None:
                cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password))
                               .as_string(cursor.connection))
            statements = [
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(connection.settings_dict["NAME"]),
                                                                     ident),
                sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident),
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(ident),
                sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(ident),
                sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(AUDIT_TABLE), ident),
            ]
            for statement in statements:
                cursor.execute(statement.as_string(cursor.connection))
        self.stdout.write(f"role {role}: read/write on every table, append-only on {AUDIT_TABLE}, no TRUNCATE, "
                          f"owns nothing")
