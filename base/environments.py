"""The config version of environments: every write that changes what an environment serves
bumps it, which is how the snapshot caches of every serving process learn they are stale."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F
from django.utils import timezone

from base.models import Environment

# PostgreSQL's notification channel for environment changes: a trigger on the environments'
# table (migration 0003) sends "<id>:<config_version>" on it when a change commits.
CHANGE_CHANNEL = "splitbase_environment"


def environments_bump(*, environment_ids: Iterable[int]) -> None:
    """Mark the environments' compiled snapshots stale."""
    Environment.objects.filter(id__in=list(environment_ids)).update(
        config_version=F("config_version") + 1, updated_at=timezone.now()
    )


def environments_bump_all() -> None:
    """Mark every environment's snapshot stale (a change that all of them compile in)."""
    environments_bump(environment_ids=Environment.objects.values_list("id", flat=True))
