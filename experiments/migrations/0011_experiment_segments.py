# Saved segments an experiment (and each of its phases) targets, beside its condition.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0010_snapshot_schema_version'),
    ]

    operations = [
        migrations.AddField(
            model_name='experiment',
            name='segments',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='phase',
            name='segments',
            field=models.JSONField(blank=True, default=list),
        ),
    ]
