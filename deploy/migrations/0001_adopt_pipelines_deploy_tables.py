"""The deploy app adopts the tables its models had in the pipelines app: state only, no table or row is copied.

pipelines.0002 removes the same four models from the pipelines app's state. The content types (and with them the
permissions) are relabelled so that existing grants follow the models.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MODELS = ("servicevalues", "environmentvalues", "deployrevision", "targetcredential")


def relabel_content_types(apps, schema_editor, old="pipelines", new="deploy"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MODELS:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def unlabel_content_types(apps, schema_editor):
    relabel_content_types(apps, schema_editor, old="deploy", new="pipelines")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("pipelines", "0001_initial"),
        ("releases", "0003_deploy_target_and_rollout_weight"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='TargetCredential',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('kubeconfig', 'kubeconfig (stored encrypted)'), ('token', 'service-account token, host and CA (stored encrypted)'), ('kubeconfig_file', 'kubeconfig read from a secret file'), ('token_file', 'service-account token read from a secret file')], max_length=20)),
                        ('host', models.CharField(blank=True, help_text='API server URL (token kinds)', max_length=500)),
                        ('context', models.CharField(blank=True, help_text='kubeconfig context (kubeconfig kinds)', max_length=200)),
                        ('ciphertext', models.BinaryField(default=bytes)),
                        ('secret_path', models.CharField(blank=True, help_text='file holding the kubeconfig or token', max_length=500)),
                        ('ca_path', models.CharField(blank=True, help_text='CA bundle file (token_file)', max_length=500)),
                        ('updated_by_name', models.CharField(max_length=150)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('environment', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='target_credential', to='releases.environment')),
                    ],
                    options={'db_table': 'pipelines_targetcredential'},
                ),
                migrations.CreateModel(
                    name='DeployRevision',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('status', models.CharField(choices=[('deployed', 'Deployed'), ('failed', 'Failed'), ('superseded', 'Superseded'), ('rolled_back', 'Rolled back')], max_length=20)),
                        ('track', models.CharField(default='stable', help_text='stable or canary', max_length=10)),
                        ('colour', models.CharField(blank=True, help_text='blue or green for blue-green environments', max_length=10)),
                        ('image_tag', models.CharField(max_length=128)),
                        ('actor_name', models.CharField(max_length=150)),
                        ('description', models.CharField(blank=True, help_text='e.g. "rollback to 3"', max_length=500)),
                        ('rollback_of', models.PositiveIntegerField(blank=True, help_text='the revision this one re-applied', null=True)),
                        ('revision_json', models.TextField()),
                        ('digest', models.CharField(max_length=64)),
                        ('rollout_reason', models.CharField(blank=True, help_text='Complete, CrashLoopBackOff, ...', max_length=60)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('status_changed_at', models.DateTimeField(auto_now_add=True)),
                        ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deploy_revisions', to='releases.environment')),
                        ('release', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='deploy_revisions', to='releases.release')),
                        ('service', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deploy_revisions', to='releases.agentservice')),
                    ],
                    options={
                        'db_table': 'pipelines_deployrevision',
                        'ordering': ['service', 'environment', '-number'],
                        'constraints': [models.UniqueConstraint(fields=('service', 'environment', 'number'), name='deploy_revision_unique_number'), models.CheckConstraint(condition=models.Q(('track__in', ['stable', 'canary'])), name='deploy_revision_track')],
                    },
                ),
                migrations.CreateModel(
                    name='EnvironmentValues',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('text', models.TextField(blank=True)),
                        ('author_name', models.CharField(max_length=150)),
                        ('comment', models.CharField(blank=True, max_length=500)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('author', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('environment', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='values_versions', to='releases.environment')),
                        ('service', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='environment_values_versions', to='releases.agentservice')),
                    ],
                    options={
                        'db_table': 'pipelines_environmentvalues',
                        'ordering': ['service', 'environment', '-number'],
                        'constraints': [models.UniqueConstraint(fields=('service', 'environment', 'number'), name='env_values_unique_number')],
                    },
                ),
                migrations.CreateModel(
                    name='ServiceValues',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('number', models.PositiveIntegerField()),
                        ('text', models.TextField(blank=True, help_text='values.yaml as the author wrote it')),
                        ('author_name', models.CharField(max_length=150)),
                        ('comment', models.CharField(blank=True, max_length=500)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('author', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('service', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='values_versions', to='releases.agentservice')),
                    ],
                    options={
                        'db_table': 'pipelines_servicevalues',
                        'ordering': ['service', '-number'],
                        'constraints': [models.UniqueConstraint(fields=('service', 'number'), name='service_values_unique_number')],
                    },
                ),
            ],
        ),
        migrations.RunPython(relabel_content_types, unlabel_content_types),
    ]
