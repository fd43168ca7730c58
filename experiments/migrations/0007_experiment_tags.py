# Experiments get tags of their own. The experiment list used to filter by the flag's tags, so
# existing experiments start with those of their flag that are valid experiment tags.

import re
from typing import Any

from django.db import migrations, models

TAG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


def copy_flag_tags(apps: Any, schema_editor: Any) -> None:
    Experiment = apps.get_model("experiments", "Experiment")
    for experiment in Experiment.objects.select_related("flag").only("id", "flag__tags"):
        tags: list[str] = []
        for tag in experiment.flag.tags or []:
            value = str(tag).strip().lower()
            if len(value) <= 40 and TAG_RE.match(value) and value not in tags:
                tags.append(value)
        if tags:
            Experiment.objects.filter(pk=experiment.pk).update(tags=tags[:20])


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0006_experiment_target_mde'),
        ('flags', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='experiment',
            name='tags',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.RunPython(copy_flag_tags, migrations.RunPython.noop),
    ]
