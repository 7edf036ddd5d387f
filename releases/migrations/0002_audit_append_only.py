"""On PostgreSQL the database itself refuses UPDATE and DELETE of audit rows, whatever code runs."""
from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION rollgate_audit_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER releases_auditevent_append_only
  BEFORE UPDATE OR DELETE ON releases_auditevent
  FOR EACH ROW EXECUTE FUNCTION rollgate_audit_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS releases_auditevent_append_only ON releases_auditevent;
DROP FUNCTION IF EXISTS rollgate_audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("releases", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
