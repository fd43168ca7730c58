"""The per-unit rollup keeps its values in plain columns, in parts, and is unlogged.

The rollup is derived data (rebuilt from events by the next readout), so the old table is
dropped rather than converted, and the readout bookkeeping that refers to it is cleared.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models

COLUMNS = 64


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(name="UnitRollup"),
        migrations.RunSQL("DELETE FROM experiments_readoutstate", reverse_sql=migrations.RunSQL.noop),
        migrations.CreateModel(
            name="UnitRollup",
            fields=[
                ("pk", models.CompositePrimaryKey("phase", "part", "unit", blank=True, editable=False,
                                                  primary_key=True, serialize=False)),
                ("part", models.SmallIntegerField(default=0)),
                ("variation", models.SmallIntegerField()),
                ("first_seen", models.DateTimeField()),
                ("slices", django.contrib.postgres.fields.ArrayField(base_field=models.TextField(null=True),
                                                                     default=list, size=None)),
                ("phase", models.ForeignKey(db_constraint=False, db_index=False,
                                            on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                            to="experiments.phase")),
                ("unit", models.ForeignKey(db_constraint=False, db_index=False,
                                           on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                           to="experiments.unit")),
                *[(f"v{i}", models.FloatField(blank=True, null=True)) for i in range(COLUMNS)],
            ],
        ),
        # Unlogged: no write-ahead log for rows that a readout can always rebuild. After a
        # crash PostgreSQL empties the table and the next readout rebuilds it.
        migrations.RunSQL(
            "ALTER TABLE experiments_unitrollup SET UNLOGGED",
            reverse_sql="ALTER TABLE experiments_unitrollup SET LOGGED",
        ),
    ]
