"""ORM rows -> the pure, compiled :class:`flags.engine.types.Snapshot` that evaluation reads.

The shapes follow GrowthBook, so that ``flags.engine.gbformat`` can serve the same snapshot as an
SDK payload and a GrowthBook SDK agrees with our own evaluation:

- a disabled flag serves its off variant, without rules;
- flag-level prerequisites become a leading *gate* rule (a failed gate serves null);
- rule-level prerequisites skip the rule when they fail;
- id-list segments become saved groups tested with ``{attribute: {"$inGroup": key}}``,
  condition segments are inlined; everything is joined to the rule condition with ``$and``;
- rollouts, force rules with a coverage below 1 (GrowthBook treats them as rollouts) and
  experiments hash with GrowthBook's version 2 hash;
- an experiment rule with a holdout gets a range filter that lets only units outside the
  holdout's share in (with its layer range, if any, as a second filter, since GrowthBook
  ignores a namespace once filters are set); held-out units fall through to the next rule;
- before the first rule of a flag that names an active holdout comes the holdout's tracking
  rule: an experiment "holdout:<key>" on the holdout's hash, its two arms (held-out, released)
  both passthrough, so every unit reaching that point is reported in its arm (the holdout
  readout's population) and evaluation carries on unchanged;
- a force rule with a holdout serves only the holdout's units (the complementary range filter):
  shipping an experiment in a holdout's scope leaves one behind, so that held-out units keep
  the value they had before it while everyone else gets the shipped default.

Validation keeps stored configuration within ``flags.engine.limits``; a row written around it
costs only itself: a condition too deep to compile makes its rule (or prerequisite) one that
never matches, and a flag with a value too deep to serialise is left out, each with an error
logged, while the rest of the environment is served.

``environment_snapshot`` reads one environment in a fixed batch of queries; the other
functions work on rows already in memory and touch no database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from django.db.models import Prefetch

from base.models import Environment
from flags.engine.attributes import AttributeDefinition as AttributeSpec
from flags.engine.conditions import ConditionTooComplex
from flags.engine.limits import SERVE_VALUE_MAX_DEPTH, depth_exceeds
from flags.engine.privacy import ClientPolicy, secure_attributes_of
from flags.engine.types import Feature, ParentCondition, Rule, Snapshot, ValueType, VariationMeta
from flags.models import AttributeDefinition, Flag, FlagState, Segment, Variant
from flags.models import Rule as RuleRow
from traffic.assignment.bucketing import (
    HOLDOUT_VARIATIONS,
    holdout_experiment_key,
    holdout_filter,
    holdout_members_filter,
    namespace_filter,
)
from traffic.assignment.types import Filter, Namespace
from traffic.models import Holdout

__all__ = ["client_policy", "environment_snapshot", "feature_from_rows", "rule_from_row", "snapshot_from_rows"]

logger = logging.getLogger(__name__)

# A prerequisite without a condition requires its parent flag to be on.
DEFAULT_PREREQUISITE_CONDITION: Mapping[str, Any] = {"value": True}
# A condition no unit satisfies, here and in GrowthBook's SDKs: the negation of the empty
# condition, which every unit satisfies.
NEVER_MATCHES: Mapping[str, Any] = {"$not": {}}
HASH_VERSION = 2


def environment_snapshot(*, environment: Environment) -> Snapshot:
    """Compile one environment: its flag states, variants, enabled rules and the segments
    they use, in four queries (five when a rule has a holdout). ``environment.config_version``
    labels the snapshot, so read the row before calling: a write racing the load then only
    causes one extra reload."""
    states = list(
        FlagState.objects.filter(environment_id=environment.pk, flag__archived_at__isnull=True)
        .select_related("flag")
        .prefetch_related(
            Prefetch("flag__variants", queryset=Variant.objects.order_by("position", "id")),
            Prefetch("rules", queryset=RuleRow.objects.filter(enabled=True).order_by("position", "id")),
        )
    )
    segment_keys = {key for state in states for rule in state.rules.all() for key in _segment_keys(rule)}
    segments = {s.key: s for s in Segment.objects.filter(key__in=segment_keys)} if segment_keys else {}
    holdout_keys = {rule.holdout for state in states for rule in state.rules.all() if rule.holdout}
    holdouts = {h.key: h for h in Holdout.objects.filter(key__in=holdout_keys)} if holdout_keys else {}
    rows = [(state.flag, state, list(state.flag.variants.all()), list(state.rules.all())) for state in states]
    return snapshot_from_rows(
        environment=environment.key,
        version=environment.config_version,
        updated_at=environment.updated_at,
        flags=rows,
        segments=segments,
        holdouts=holdouts,
    )


def client_policy(*, environment: Environment) -> ClientPolicy:
    """What the environment's client keys may receive, with the secure attributes every private
    segment makes (whether a rule uses it yet or not, so the attributes an application hashes
    do not change as rules come and go). One query."""
    private = Segment.objects.filter(private=True).values_list("kind", "attribute", "condition")
    return ClientPolicy(
        mode=environment.client_payload,
        salt=environment.attribute_salt,
        decryption_key=environment.decryption_key,
        secure_attributes=secure_attributes_of(private),
    )


def snapshot_from_rows(
    *,
    environment: str,
    version: int,
    updated_at: datetime | None,
    flags: Iterable[tuple[Flag, FlagState, Sequence[Variant], Sequence[RuleRow]]],
    segments: Mapping[str, Segment],
    holdouts: Mapping[str, Holdout] | None = None,
) -> Snapshot:
    """Build a snapshot from rows in memory (archived flags are left out here too)."""
    saved_groups: dict[str, tuple[Any, ...]] = {}
    features: dict[str, Feature] = {}
    metadata: dict[str, dict[str, str | float | bool]] = {}
    for flag, state, variants, rules in sorted(flags, key=lambda row: row[0].key):
        if flag.archived_at is not None:
            continue
        if any(depth_exceeds(variant.value, SERVE_VALUE_MAX_DEPTH) for variant in variants):
            logger.error("Flag %s has a variant value nested deeper than %d levels; it is not served.",
                         flag.key, SERVE_VALUE_MAX_DEPTH)
            continue
        features[flag.key] = feature_from_rows(
            flag=flag, state=state, variants=variants, rules=rules, segments=segments, saved_groups=saved_groups,
            holdouts=holdouts,
        )
        metadata[flag.key] = flag_metadata(flag)
    return Snapshot(
        environment=environment,
        version=version,
        features=features,
        saved_groups=saved_groups,
        date_updated=_iso(updated_at),
        metadata=metadata,
    )


def flag_metadata(flag: Flag) -> dict[str, str | float | bool]:
    """A flag's OpenFeature metadata: its free-form ``metadata`` (strings, numbers, booleans),
    then its own fields, only what is set, as strings (tags comma-separated). Validation reserves
    the own fields' keys; for a row written around it, the own field wins and a value that is
    not a string, number or boolean is left out."""
    free = flag.metadata if isinstance(flag.metadata, Mapping) else {}
    found: dict[str, str | float | bool] = {
        key: value for key, value in free.items() if isinstance(key, str) and isinstance(value, str | int | float)
    }
    found["type"] = flag.value_type
    if flag.name:
        found["name"] = flag.name
    if flag.description:
        found["description"] = flag.description
    if flag.owner:
        found["owner"] = flag.owner
    tags = [str(tag) for tag in flag.tags or [] if isinstance(tag, str | int | float)]
    if tags:
        found["tags"] = ",".join(tags)
    return found


def feature_from_rows(
    *,
    flag: Flag,
    state: FlagState,
    variants: Sequence[Variant],
    rules: Sequence[RuleRow],
    segments: Mapping[str, Segment],
    saved_groups: dict[str, tuple[Any, ...]],
    holdouts: Mapping[str, Holdout] | None = None,
) -> Feature:
    """One flag in one environment. Id-list segments it uses are added to ``saved_groups``."""
    values = {v.key: v.value for v in variants}
    names = {v.key: v.name for v in variants}
    value_type = cast(ValueType, flag.value_type)
    if not state.enabled:
        return Feature(
            key=flag.key,
            default_value=values.get(state.off_variant),
            default_variant=state.off_variant,
            enabled=False,
            value_type=value_type,
        )
    compiled: list[Rule] = []
    gate = _parents(flag.prerequisites, gate=True, owner=f"flag {flag.key}")
    if gate:
        compiled.append(Rule(parent_conditions=gate))
    tracked: set[str] = set()
    for row in rules:
        if not row.enabled:
            continue
        if row.holdout and row.holdout not in tracked:
            tracked.add(row.holdout)
            tracking = _holdout_tracking((holdouts or {}).get(row.holdout), values.get(state.default_variant))
            if tracking is not None:
                compiled.append(tracking)
        rule = rule_from_row(
            flag_key=flag.key, row=row, values=values, names=names, segments=segments, saved_groups=saved_groups,
            holdouts=holdouts,
        )
        if rule is not None:
            compiled.append(rule)
    return Feature(
        key=flag.key,
        default_value=values.get(state.default_variant),
        default_variant=state.default_variant,
        rules=tuple(compiled),
        enabled=True,
        value_type=value_type,
    )


def rule_from_row(
    *,
    flag_key: str,
    row: RuleRow,
    values: Mapping[str, Any],
    names: Mapping[str, str],
    segments: Mapping[str, Segment],
    saved_groups: dict[str, tuple[Any, ...]],
    holdouts: Mapping[str, Holdout] | None = None,
) -> Rule | None:
    """One rule; None when it refers to a variant, segment or holdout that no longer exists
    (the services prevent that, so it is only a guard against a half-migrated row). A rule
    whose condition is too deep to compile never matches."""
    condition = _condition(row.condition, _segment_keys(row), segments, saved_groups)
    if condition is _MISSING:
        logger.warning("Rule %s of flag %s uses an unknown segment; it is skipped.", row.uid, flag_key)
        return None
    common: dict[str, Any] = {
        "id": row.uid,
        "condition": condition,
        "parent_conditions": _parents(row.prerequisites, gate=False, owner=f"rule {row.uid} of flag {flag_key}"),
        "starts_at": _epoch(row.starts_at),
        "ends_at": _epoch(row.ends_at),
    }
    try:
        return _rule(flag_key, row, values, names, holdouts, common)
    except ConditionTooComplex as exc:
        logger.error("Rule %s of flag %s never matches: %s", row.uid, flag_key, exc)
        return _rule(flag_key, row, values, names, holdouts, {**common, "condition": NEVER_MATCHES})


def _rule(
    flag_key: str,
    row: RuleRow,
    values: Mapping[str, Any],
    names: Mapping[str, str],
    holdouts: Mapping[str, Holdout] | None,
    common: dict[str, Any],
) -> Rule | None:
    if row.kind in (RuleRow.Kind.FORCE, RuleRow.Kind.ROLLOUT):
        if row.variant not in values:
            logger.warning("Rule %s of flag %s serves an unknown variant; it is skipped.", row.uid, flag_key)
            return None
        if row.kind == RuleRow.Kind.FORCE and row.holdout:
            return _holdout_force(flag_key, row, values, holdouts, common)
        # A force rule with a coverage below 1 is a percentage rollout, as in GrowthBook; at full
        # coverage it serves everyone who matches, units without a hash attribute included.
        if row.kind == RuleRow.Kind.FORCE and float(row.coverage) >= 1.0:
            return Rule(force=values[row.variant], force_variant=row.variant, **common)
        return Rule(
            force=values[row.variant],
            force_variant=row.variant,
            coverage=float(row.coverage),
            hash_attribute=row.hash_attribute or "id",
            fallback_attribute=row.fallback_attribute or None,
            seed=row.seed or flag_key,
            hash_version=HASH_VERSION,
            **common,
        )
    keys = [str(k) for k in row.variations or ()]
    if len(keys) < 2 or any(k not in values for k in keys):
        logger.warning("Experiment rule %s of flag %s has unknown variations; it is skipped.", row.uid, flag_key)
        return None
    weights = tuple(float(w) for w in row.weights) if row.weights else None
    passing = {str(k) for k in row.passthrough or ()}
    hash_attribute = row.hash_attribute or "id"
    namespace = _namespace(row.namespace)
    filters: tuple[Filter, ...] | None = None
    if row.holdout:
        holdout = (holdouts or {}).get(row.holdout)
        if holdout is None:
            logger.warning("Experiment rule %s of flag %s uses an unknown holdout; it is skipped.", row.uid, flag_key)
            return None
        filters = _holdout_filters(holdout, namespace, hash_attribute)
    return Rule(
        variations=tuple(values[k] for k in keys),
        weights=weights,
        coverage=float(row.coverage),
        hash_attribute=hash_attribute,
        seed=row.seed or row.experiment_key or flag_key,
        key=row.experiment_key or row.uid,
        meta=tuple(VariationMeta(key=k, name=names.get(k) or None, passthrough=k in passing) for k in keys),
        namespace=namespace,
        filters=filters,
        phase=row.phase or None,
        hash_version=HASH_VERSION,
        **common,
    )


def _holdout_tracking(holdout: Holdout | None, value: Any) -> Rule | None:
    """The holdout's tracking rule (None for a holdout gone, ended or holding nobody): both arms
    pass through, so the value (the flag's default) is never served by it."""
    if holdout is None or holdout.ended_at is not None or holdout.share <= 0:
        return None
    share = float(holdout.share)
    return Rule(
        id=f"holdout-{holdout.key}",
        variations=(value, value),
        weights=(share, 1.0 - share),
        coverage=1.0,
        hash_attribute=holdout.hash_attribute or "id",
        seed=holdout.seed or holdout.key,
        key=holdout_experiment_key(holdout.key),
        meta=tuple(VariationMeta(key=k, passthrough=True) for k in HOLDOUT_VARIATIONS),
        hash_version=HASH_VERSION,
    )


def _holdout_force(
    flag_key: str, row: RuleRow, values: Mapping[str, Any], holdouts: Mapping[str, Holdout] | None,
    common: dict[str, Any],
) -> Rule | None:
    """A force rule that serves its variant to the holdout's units only (None when the holdout
    is gone, has ended or holds nobody: then the rule serves no one)."""
    holdout = (holdouts or {}).get(row.holdout)
    if holdout is None or holdout.ended_at is not None:
        logger.warning("Force rule %s of flag %s is for a holdout that is gone or ended; it is skipped.",
                       row.uid, flag_key)
        return None
    members = holdout_members_filter(holdout.seed or holdout.key, float(holdout.share),
                                     holdout.hash_attribute or "id")
    if members is None:
        return None
    return Rule(force=values[row.variant], force_variant=row.variant, filters=(members,), **common)


# --- helpers -------------------------------------------------------------------------

_MISSING: Any = object()


def _segment_keys(row: RuleRow) -> list[str]:
    return [str(k) for k in row.segments or ()]


def _condition(
    condition: Any,
    segment_keys: Sequence[str],
    segments: Mapping[str, Segment],
    saved_groups: dict[str, tuple[Any, ...]],
) -> Any:
    parts: list[Mapping[str, Any]] = []
    if isinstance(condition, Mapping) and condition:
        parts.append(condition)
    for key in segment_keys:
        segment = segments.get(key)
        if segment is None:
            return _MISSING
        if segment.kind == Segment.Kind.IDS:
            saved_groups[segment.key] = tuple(segment.ids or ())
            parts.append({segment.attribute or "id": {"$inGroup": segment.key}})
        elif isinstance(segment.condition, Mapping) and segment.condition:
            parts.append(segment.condition)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"$and": parts}


def _parents(prerequisites: Any, *, gate: bool, owner: str) -> tuple[ParentCondition, ...]:
    out: list[ParentCondition] = []
    for item in prerequisites or ():
        if not isinstance(item, Mapping) or not isinstance(item.get("flag"), str):
            continue
        condition = item.get("condition")
        if not isinstance(condition, Mapping):
            condition = DEFAULT_PREREQUISITE_CONDITION
        try:
            out.append(ParentCondition(id=item["flag"], condition=condition, gate=gate))
        except ConditionTooComplex as exc:
            logger.error("The prerequisite %s of %s never holds: %s", item["flag"], owner, exc)
            out.append(ParentCondition(id=item["flag"], condition=NEVER_MATCHES, gate=gate))
    return tuple(out)


def _holdout_filters(
    holdout: Holdout, namespace: Namespace | None, hash_attribute: str
) -> tuple[Filter, ...] | None:
    held_out = holdout_filter(holdout.seed or holdout.key, float(holdout.share), holdout.hash_attribute or "id")
    if held_out is None:
        return None
    if namespace is None:
        return (held_out,)
    # The namespace hashes the experiment's own hash attribute.
    return (held_out, namespace_filter(namespace, hash_attribute))


def _namespace(value: Any) -> Namespace | None:
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return Namespace(str(value[0]), float(value[1]), float(value[2]))
    return None


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def attribute_from_row(row: AttributeDefinition) -> AttributeSpec:
    """An attribute definition as the condition builder reads it."""
    return AttributeSpec.from_document(
        {"name": row.name, "type": row.type, "allowed_values": row.allowed_values, "description": row.description}
    )
