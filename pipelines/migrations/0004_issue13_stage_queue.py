from django.db import migrations, models


class Migration(migrations.Migration):
    """Issue 13: when a stage's task was queued, so the sweeper can find a lost one again from the database."""

    dependencies = [("pipelines", "0003_issue12_ci_ends_at_ready")]

    operations = [
        migrations.AddField("stage", "queued_at", models.DateTimeField(
            blank=True, null=True, help_text="when its task was last queued")),
        migrations.AddField("stage", "redrives", models.PositiveSmallIntegerField(
            default=0, help_text="times the sweeper queued it again")),
    ]
