"""The project's settings: one row, read with its defaults and changed through one audited write.

`stats_engine_default` is the statistics engine a new experiment gets when its creation does
not name one; empty means the service's `STATS_ENGINE_DEFAULT` setting ("frequentist" unless
configured). An experiment keeps the engine it was created with when the default changes
later, so that a running experiment is never re-judged by another method behind its owner's
back.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from audit.services import audit_record
from audit.types import Actor
from base.checks import add_error, raise_if
from base.keys import Errors
from base.writes import reject_unknown
from experiments.models import ProjectSettings

PROJECT_FIELDS = ("stats_engine_default",)


def project_settings_get() -> ProjectSettings:
    """The settings row, created with its defaults on first read."""
    found, _ = ProjectSettings.objects.get_or_create(pk=1)
    return found


def project_engine_default() -> str:
    """The engine of a new experiment that names none: the project's choice, else the service's."""
    row = ProjectSettings.objects.filter(pk=1).values_list("stats_engine_default", flat=True).first()
    return row or str(settings.STATS_ENGINE_DEFAULT)


def project_settings_document(row: ProjectSettings) -> dict[str, Any]:
    return {
        "stats_engine_default": row.stats_engine_default,
        "stats_engine_effective": row.stats_engine_default or str(settings.STATS_ENGINE_DEFAULT),
    }


@transaction.atomic
def project_settings_update(*, actor: Actor, **changes: Any) -> ProjectSettings:
    """Change the project's settings; audited as `project.settings.update`."""
    reject_unknown(changes, PROJECT_FIELDS, what="project settings")
    errors: Errors = {}
    engine = changes.get("stats_engine_default")
    if "stats_engine_default" in changes and engine not in ProjectSettings.StatsEngineDefault.values:
        add_error(errors, "stats_engine_default",
                  "Use frequentist, bayesian, or an empty value for the service's default.")
    raise_if(errors, "The project settings are not valid.")
    ProjectSettings.objects.get_or_create(pk=1)
    row = ProjectSettings.objects.select_for_update().get(pk=1)
    before = project_settings_document(row)
    for field, value in changes.items():
        setattr(row, field, value)
    row.save()
    audit_record(actor=actor, action="project.settings.update", object_type="project_settings",
                 object_key="project", before=before, after=project_settings_document(row))
    return row
