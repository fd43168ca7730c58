# Environments and API tokens moved to the base app (same tables): only Django's state changes.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("base", "0001_initial"),
        ("experiments", "0009_environment_in_base"),
        ("flags", "0004_api_token_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="flagstate", name="environment",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="flag_states",
                                            to="base.environment"),
                ),
                migrations.AlterField(
                    model_name="flagusage", name="environment",
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="flag_usage",
                                            to="base.environment"),
                ),
                migrations.AlterField(
                    model_name="environmentusage", name="environment",
                    field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                               related_name="usage", serialize=False, to="base.environment"),
                ),
                migrations.DeleteModel(name="ApiToken"),
                migrations.DeleteModel(name="Environment"),
            ],
            database_operations=[],
        ),
    ]
