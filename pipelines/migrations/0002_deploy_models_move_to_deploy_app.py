"""Values, revisions and credentials now belong to the deploy app (deploy.0001 adopts their tables).

State only: the tables stay where they are, under their pipelines_* names.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0001_initial"),
        ("deploy", "0001_adopt_pipelines_deploy_tables"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="ServiceValues"),
                migrations.DeleteModel(name="EnvironmentValues"),
                migrations.DeleteModel(name="DeployRevision"),
                migrations.DeleteModel(name="TargetCredential"),
            ],
        ),
    ]
