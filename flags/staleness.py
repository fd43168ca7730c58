"""Stale flags: temporary flags that nobody evaluates any more, or that have served one
variant to everyone for a long time. Both are candidates for removal from the code.

A flag is stale when it is temporary, not archived, and either
- it was created more than `STALE_FLAG_DAYS` days ago and the server has not evaluated it for
  `STALE_FLAG_DAYS` days, or never (evaluations through `POST /api/v1/evaluate`, OFREP and
  exposures sent to the events API are recorded per environment by `serving.usage`; fetches of
  the GrowthBook payload are not evaluations, since SDKs evaluate it locally), or
- every environment has served the same single variant to every unit for `STALE_FLAG_DAYS`
  days ("fully rolled out": no split, no partial rollout, no targeting that serves another
  variant, nothing scheduled).

Permanent flags (operational switches, entitlements) are never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Prefetch, QuerySet
from django.utils import timezone

from audit.models import AuditEntry
from flags.models import Flag, FlagState, Rule
from flags.selectors import flag_last_evaluated

__all__ = [
    "DEFAULT_STALE_FLAG_DAYS",
    "FlagLifecycle",
    "LastEvaluatedSource",
    "flag_lifecycle_assess",
    "flag_lifecycle_get",
    "flag_lifecycle_list",
    "flags_with_rules",
    "served_variants",
    "stale_flag_days",
    "stale_flag_list",
]

DEFAULT_STALE_FLAG_DAYS = 30
# Stand-in for "the flag-level prerequisite gate failed": the flag then serves null.
GATE = "(null: prerequisite not met)"

# flag keys -> time of the last evaluation seen, for the flags that have one.
LastEvaluatedSource = Callable[[Sequence[str]], Mapping[str, datetime]]


def stale_flag_days() -> int:
    return int(getattr(settings, "STALE_FLAG_DAYS", DEFAULT_STALE_FLAG_DAYS))


@dataclass(frozen=True, slots=True)
class FlagLifecycle:
    key: str
    lifecycle: str
    stale: bool
    reasons: tuple[str, ...]
    last_evaluated: datetime | None
    last_changed: datetime | None
    # The one variant every environment serves to everyone, when there is one.
    rolled_out_variant: str | None
    rolled_out_since: datetime | None


def _unconditional(rule: Rule) -> bool:
    return not rule.condition and not rule.segments and not rule.prerequisites


def served_variants(
    state: FlagState, rules: Iterable[Rule], *, flag_prerequisites: bool, now: datetime
) -> tuple[set[str], datetime | None]:
    """Variants one environment can serve now or later, and since when that set holds.

    Rules are read in order: an enabled, unconditional rule that covers every unit with one
    variant, is active now and never ends hides everything after it. Expired rules are
    ignored (their end is when the current set began); scheduled ones count.
    """
    if not state.enabled:
        return {state.off_variant}, None
    served: set[str] = set()
    since: datetime | None = None
    if flag_prerequisites:
        served.add(GATE)
    for rule in rules:
        if not rule.enabled:
            continue
        if rule.ends_at is not None and rule.ends_at <= now:
            since = rule.ends_at if since is None else max(since, rule.ends_at)
            continue
        if rule.kind == Rule.Kind.EXPERIMENT:
            weights = list(rule.weights or [])
            served.update(
                str(v) for i, v in enumerate(rule.variations or []) if i >= len(weights) or float(weights[i]) > 0
            )
            continue
        served.add(rule.variant)
        started = rule.starts_at is None or rule.starts_at <= now
        if started and rule.ends_at is None and _unconditional(rule) and rule.coverage >= 1.0:
            if rule.starts_at is not None:
                since = rule.starts_at if since is None else max(since, rule.starts_at)
            return served, since
    served.add(state.default_variant)
    return served, since


def _assess(
    flag: Flag,
    *,
    now: datetime,
    days: int,
    last_evaluated: datetime | None,
    last_audit: datetime | None,
) -> FlagLifecycle:
    last_changed = max(t for t in (last_audit, flag.updated_at) if t is not None)
    served: set[str] = set()
    since = last_changed
    states = list(flag.states.all())
    for state in states:
        variants, started = served_variants(
            state, state.rules.all(), flag_prerequisites=bool(flag.prerequisites), now=now
        )
        served |= variants
        if started is not None:
            since = max(since, started)
    rolled_out = next(iter(served)) if states and len(served) == 1 else None
    horizon = now - timedelta(days=days)
    reasons: list[str] = []
    if flag.lifecycle != Flag.Lifecycle.PERMANENT:
        # An evaluation before the horizon implies the flag is older than it.
        if last_evaluated is not None and last_evaluated < horizon:
            reasons.append(f"not evaluated for {(now - last_evaluated).days} days")
        elif last_evaluated is None and flag.created_at < horizon:
            reasons.append(f"never evaluated, created {(now - flag.created_at).days} days ago")
        if rolled_out is not None and since < horizon:
            reasons.append(f"served '{rolled_out}' to everyone in every environment for {(now - since).days} days")
    return FlagLifecycle(
        key=flag.key,
        lifecycle=flag.lifecycle,
        stale=bool(reasons),
        reasons=tuple(reasons),
        last_evaluated=last_evaluated,
        last_changed=last_changed,
        rolled_out_variant=rolled_out,
        rolled_out_since=since if rolled_out is not None else None,
    )


def flags_with_rules(flags: QuerySet[Flag] | None = None) -> QuerySet[Flag]:
    """Non-archived flags (of `flags`) with their states, environments and rules prefetched."""
    qs = Flag.objects.all() if flags is None else flags
    return qs.filter(archived_at__isnull=True).prefetch_related(
        Prefetch(
            "states",
            queryset=FlagState.objects.select_related("environment").prefetch_related(
                Prefetch("rules", queryset=Rule.objects.order_by("position", "id"))
            ),
        )
    )


def flag_lifecycle_list(
    *,
    flags: QuerySet[Flag] | None = None,
    now: datetime | None = None,
    days: int | None = None,
    last_evaluated: LastEvaluatedSource = flag_last_evaluated,
) -> list[FlagLifecycle]:
    """Lifecycle of every non-archived flag (or of `flags`), in a fixed number of queries."""
    return flag_lifecycle_assess(
        list(flags_with_rules(flags)), now=now, days=days, last_evaluated=last_evaluated, every_flag=flags is None
    )


def flag_lifecycle_assess(
    rows: Sequence[Flag],
    *,
    now: datetime | None = None,
    days: int | None = None,
    last_evaluated: LastEvaluatedSource = flag_last_evaluated,
    every_flag: bool = False,
) -> list[FlagLifecycle]:
    """Lifecycle of flags loaded by `flags_with_rules` (two more queries: the audit log and
    the recorded evaluations).

    `every_flag` says the rows are all flags, which spares the key filter on the audit query.
    """
    moment = now or timezone.now()
    horizon_days = stale_flag_days() if days is None else days
    keys = [f.key for f in rows]
    entries = AuditEntry.objects.filter(object_type="flag")
    if not every_flag:
        entries = entries.filter(object_key__in=keys)
    audits = dict(entries.values("object_key").annotate(last=Max("created_at")).values_list("object_key", "last"))
    evaluated = last_evaluated(keys)
    return [
        _assess(
            flag,
            now=moment,
            days=horizon_days,
            last_evaluated=evaluated.get(flag.key),
            last_audit=audits.get(flag.key),
        )
        for flag in rows
    ]


def flag_lifecycle_get(
    *, flag: Flag, now: datetime | None = None, last_evaluated: LastEvaluatedSource = flag_last_evaluated
) -> FlagLifecycle:
    found = flag_lifecycle_list(flags=Flag.objects.filter(pk=flag.pk), now=now, last_evaluated=last_evaluated)
    if found:
        return found[0]
    return FlagLifecycle(
        key=flag.key,
        lifecycle=flag.lifecycle,
        stale=False,
        reasons=(),
        last_evaluated=None,
        last_changed=flag.updated_at,
        rolled_out_variant=None,
        rolled_out_since=None,
    )


def stale_flag_list(
    *, now: datetime | None = None, days: int | None = None, last_evaluated: LastEvaluatedSource = flag_last_evaluated
) -> list[FlagLifecycle]:
    """Flags to clean up, oldest change first."""
    stale = [f for f in flag_lifecycle_list(now=now, days=days, last_evaluated=last_evaluated) if f.stale]
    return sorted(stale, key=lambda f: (f.last_changed or timezone.now(), f.key))
