# The guided creation used to write the planned effect into the description ("Target MDE: 5%").
# Experiments created that way get the same value in `target_mde`; descriptions stay as they are.

import re
from typing import Any

from django.db import migrations

TARGET_MDE_RE = re.compile(r"Target MDE:\s*(?P<value>[0-9]*\.?[0-9]+)\s*%", re.IGNORECASE)


def target_mde_from_description(apps: Any, schema_editor: Any) -> None:
    Experiment = apps.get_model("experiments", "Experiment")
    candidates = Experiment.objects.filter(target_mde__isnull=True, description__icontains="target mde")
    for experiment in candidates.only("id", "description"):
        match = TARGET_MDE_RE.search(experiment.description or "")
        if match is None:
            continue
        value = float(match["value"]) / 100
        if 0 < value <= 10:
            Experiment.objects.filter(pk=experiment.pk).update(target_mde=value)


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0007_experiment_tags'),
    ]

    operations = [
        migrations.RunPython(target_mde_from_description, migrations.RunPython.noop),
    ]
