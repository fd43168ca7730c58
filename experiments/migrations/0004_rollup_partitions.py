"""Rollup rows refer to slice combinations by number, and the rollup is partitioned by phase.

The rollup is derived data: the table is recreated (partitioned by phase; each phase's
partition is created unlogged by the readout that first needs it) and the readout
bookkeeping is cleared, so the next readout of every phase rebuilds its rollup.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models

COLUMNS = 64

CREATE_PARENT = (
    "CREATE TABLE experiments_unitrollup ("
    " phase_id bigint NOT NULL, part smallint NOT NULL, unit_id bigint NOT NULL,"
    " variation smallint NOT NULL, first_seen timestamp with time zone NOT NULL, slice_id bigint NOT NULL, "
    + ", ".join(f"v{i} double precision NULL" for i in range(COLUMNS))
    + ", PRIMARY KEY (phase_id, part, unit_id)"
    ") PARTITION BY LIST (phase_id)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0003_readout_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="SliceKey",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("slices", django.contrib.postgres.fields.ArrayField(base_field=models.TextField(null=True),
                                                                     default=list, size=None)),
                ("phase", models.ForeignKey(db_constraint=False, db_index=False,
                                            on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                            to="experiments.phase")),
            ],
        ),
        migrations.AddConstraint(
            model_name="slicekey",
            constraint=models.UniqueConstraint(fields=("phase", "slices"), name="slicekey_unique"),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="unitrollup", name="slices"),
                migrations.AddField(
                    model_name="unitrollup",
                    name="slice",
                    field=models.ForeignKey(db_constraint=False, db_index=False, default=None,
                                            on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                            to="experiments.slicekey"),
                    preserve_default=False,
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    ["DROP TABLE experiments_unitrollup", CREATE_PARENT, "DELETE FROM experiments_readoutstate"],
                    reverse_sql=migrations.RunSQL.noop,
                ),
            ],
        ),
    ]
