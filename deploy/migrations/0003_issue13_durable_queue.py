from django.db import migrations, models


class Migration(migrations.Migration):
    """Issue 13: what the sweeper needs to find a lost rollout or traffic change again from the database."""

    dependencies = [("deploy", "0002_issue12_rollout")]

    operations = [
        migrations.RenameField("rollout", "weight_seq", "traffic_seq"),
        migrations.RenameField("rollout", "applied_weight_seq", "traffic_applied_seq"),
        migrations.AlterField("rollout", "traffic_seq", models.PositiveIntegerField(
            default=0, help_text="number of the newest traffic change queued")),
        migrations.AlterField("rollout", "traffic_applied_seq", models.PositiveIntegerField(
            default=0, help_text="newest traffic change the target applied")),
        migrations.AddField("rollout", "queued_at", models.DateTimeField(
            blank=True, null=True, help_text="when its rollout task was last queued")),
        migrations.AddField("rollout", "redrives", models.PositiveSmallIntegerField(
            default=0, help_text="times the sweeper queued it again")),
        migrations.AddField("rollout", "traffic_task", models.CharField(
            blank=True, max_length=40, help_text="task of the newest traffic change")),
        migrations.AddField("rollout", "traffic_args", models.JSONField(
            blank=True, default=list, help_text="its arguments, change number last")),
        migrations.AddField("rollout", "traffic_queued_at", models.DateTimeField(blank=True, null=True)),
        migrations.AddField("rollout", "traffic_redrives", models.PositiveSmallIntegerField(default=0)),
    ]
