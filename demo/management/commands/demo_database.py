"""Create the demo's PostgreSQL database when it is missing (`make run`), or drop it (DEMO_RESET=1).

Connects to the server's `postgres` maintenance database as the user DATABASE_URL names (the owner role), so the
database it creates belongs to that role. Nothing to do for SQLite (migrate creates the file)."""
import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from psycopg import sql


class Command(BaseCommand):
    help = "Create the database DATABASE_URL names if it does not exist (--drop: drop it first)."

    def add_arguments(self, parser):
        parser.add_argument("--drop", action="store_true", help="drop the database (every row of the demo)")

    def handle(self, *args, drop=False, **options):
        if connection.vendor != "postgresql":
            return
        params = connection.get_connection_params()
        name = params.pop("dbname")
        params = {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}
        try:
            with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **params) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
                if drop and exists:
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
                    conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
                    self.stdout.write(f"dropped database {name}")
                elif not drop and not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    self.stdout.write(f"created database {name}")
        except psycopg.Error as error:
            raise CommandError(f"database {name} on {params.get('host')}:{params.get('port')}: {error}") from None
