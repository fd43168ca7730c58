# The environment model now lives in the base app (same table): only Django's state changes.

import django.db.models.deletion
from django.db import migrations, models


def _fk(**kwargs):
    return models.ForeignKey(to="base.environment", **kwargs)


class Migration(migrations.Migration):

    dependencies = [
        ("base", "0001_initial"),
        ("experiments", "0008_target_mde_from_description"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="experiment", name="environment",
                    field=_fk(on_delete=django.db.models.deletion.PROTECT, related_name="experiments"),
                ),
                *[
                    migrations.AlterField(
                        model_name=model, name="environment",
                        field=_fk(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                  related_name="+"),
                    )
                    for model in ("unit", "event", "exposure")
                ],
            ],
            database_operations=[],
        ),
    ]
