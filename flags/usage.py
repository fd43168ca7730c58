"""Flag evaluations recorded outside the SDK edge, such as the demo's simulated traffic.

The SDK edge notes evaluations in memory and writes them in batches (docs/sdk.md, "When was a
flag last evaluated?"); this service writes the same `FlagUsage` rows by the same rules: one
row per flag and environment, a stored time only ever moves forward, and no time lies in the
future. Recording an evaluation is not a configuration change: nothing is audited and no
environment's config version moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from base.models import Environment
from flags.models import Flag, FlagUsage

__all__ = ["flag_usage_record"]


@transaction.atomic
def flag_usage_record(*, environment: Environment, evaluated: Mapping[str, datetime]) -> None:
    """Note that the flags (by key) were evaluated in `environment` at the times given.

    Unknown keys are ignored, as the SDK edge ignores flags deleted since they were served.
    """
    now = timezone.now()
    flag_ids = dict(Flag.objects.filter(key__in=list(evaluated)).values_list("key", "pk"))
    # In flag order, so that concurrent writers lock the rows in one order.
    rows = [
        FlagUsage(flag_id=flag_ids[key], environment=environment, last_evaluated_at=min(evaluated[key], now))
        for key in sorted(flag_ids, key=flag_ids.__getitem__)
    ]
    FlagUsage.objects.bulk_create(rows, ignore_conflicts=True)
    for row in rows:
        FlagUsage.objects.filter(
            flag_id=row.flag_id, environment=environment, last_evaluated_at__lt=row.last_evaluated_at
        ).update(last_evaluated_at=row.last_evaluated_at)
