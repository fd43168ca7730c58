"""GrowthBook SDK payload <-> snapshot.

``snapshot_to_payload`` writes the JSON that GrowthBook SDKs evaluate locally
(``features``, ``savedGroups``, ``dateUpdated``); ``snapshot_from_payload``
reads it back. Fields equal to GrowthBook's defaults are left out, so a round
trip is lossless up to those defaults. What GrowthBook has no field for rides
along in keys that its SDKs ignore: ``valueType``, ``defaultVariant`` and
``enabled`` on a feature, ``forceVariant``, ``startsAt`` and ``endsAt`` on a rule.

A disabled flag is written as its default value alone, without rules, since an
SDK must serve the default. Scheduled rules are kept with their window unless
``now`` is given: then only the rules active at ``now`` are written, and
:func:`next_schedule_change` tells when that payload goes stale.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from flags.engine.types import UNSET, Experiment, Feature, ParentCondition, Rule, Snapshot, ValueType, VariationMeta
from traffic.assignment.types import BucketRange, Filter, Namespace

__all__ = [
    "experiment_from_payload",
    "next_schedule_change",
    "payload_date_updated",
    "rule_from_payload",
    "rule_to_payload",
    "snapshot_from_payload",
    "snapshot_to_payload",
]

_VALUE_TYPES: tuple[ValueType, ...] = ("boolean", "string", "number", "json")


# --- reading ---------------------------------------------------------------------


def snapshot_from_payload(payload: Mapping[str, Any], *, environment: str = "", version: int = 0) -> Snapshot:
    """Build a snapshot from a GrowthBook SDK payload."""
    features_in = payload.get("features") or {}
    features = {str(key): _feature_from_payload(str(key), fdef or {}) for key, fdef in features_in.items()}
    groups_in = payload.get("savedGroups") or {}
    groups = {str(name): tuple(values) for name, values in groups_in.items() if isinstance(values, (list, tuple))}
    date_updated = payload.get("dateUpdated")
    return Snapshot(
        environment=environment,
        version=version,
        features=features,
        saved_groups=groups,
        date_updated=str(date_updated) if date_updated is not None else None,
    )


def _infer_type(value: Any) -> ValueType:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "json"


def _feature_from_payload(key: str, fdef: Mapping[str, Any]) -> Feature:
    default = fdef.get("defaultValue")
    value_type = fdef.get("valueType")
    if value_type not in _VALUE_TYPES:
        value_type = _infer_type(default)
    return Feature(
        key=key,
        default_value=default,
        default_variant=fdef.get("defaultVariant"),
        rules=tuple(rule_from_payload(r) for r in fdef.get("rules") or () if isinstance(r, Mapping)),
        enabled=fdef.get("enabled", True) is not False,
        value_type=cast(ValueType, value_type),
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _range(value: Sequence[Any]) -> BucketRange:
    return (float(value[0]), float(value[1]))


def _ranges(value: Any) -> tuple[BucketRange, ...] | None:
    return None if value is None else tuple(_range(r) for r in value)


def _namespace(value: Any) -> Namespace | None:
    if not value:
        return None
    return Namespace(str(value[0]), float(value[1]), float(value[2]))


def _filters(value: Any) -> tuple[Filter, ...] | None:
    if value is None:
        return None
    return tuple(
        Filter(
            seed=str(f.get("seed", "")),
            ranges=tuple(_range(r) for r in f.get("ranges") or ()),
            attribute=_opt_str(f.get("attribute")),
            hash_version=int(f.get("hashVersion") or 2),
        )
        for f in value
    )


def _meta(value: Any) -> tuple[VariationMeta, ...] | None:
    if value is None:
        return None
    return tuple(
        VariationMeta(
            key=str(m["key"]) if m.get("key") is not None else str(i),
            name=_opt_str(m.get("name")),
            passthrough=bool(m.get("passthrough", False)),
        )
        for i, m in enumerate(value)
    )


def _parents(value: Any) -> tuple[ParentCondition, ...]:
    return tuple(
        ParentCondition(id=str(p["id"]), condition=p.get("condition") or {}, gate=bool(p.get("gate", False)))
        for p in value or ()
        if isinstance(p, Mapping) and p.get("id") is not None
    )


def _common(r: Mapping[str, Any]) -> dict[str, Any]:
    """Fields rules and experiments share."""
    variations = r.get("variations")
    weights = r.get("weights")
    return {
        "condition": r.get("condition") or None,
        "parent_conditions": _parents(r.get("parentConditions")),
        "variations": tuple(variations) if variations is not None else None,
        "weights": tuple(float(w) for w in weights) if weights is not None else None,
        "coverage": _opt_float(r.get("coverage")),
        "hash_attribute": str(r.get("hashAttribute") or "id"),
        "fallback_attribute": _opt_str(r.get("fallbackAttribute")),
        "hash_version": int(r.get("hashVersion") or 1),
        "seed": _opt_str(r.get("seed")),
        "name": _opt_str(r.get("name")),
        "phase": _opt_str(r.get("phase")),
        "namespace": _namespace(r.get("namespace")),
        "ranges": _ranges(r.get("ranges")),
        "filters": _filters(r.get("filters")),
        "meta": _meta(r.get("meta")),
    }


def rule_from_payload(r: Mapping[str, Any]) -> Rule:
    """One rule of a GrowthBook feature definition."""
    force = r.get("force")
    rng = r.get("range")
    return Rule(
        id=_opt_str(r.get("id")),
        force=UNSET if force is None else force,
        force_variant=_opt_str(r.get("forceVariant")),
        key=_opt_str(r.get("key")),
        range=_range(rng) if rng is not None else None,
        starts_at=_opt_float(r.get("startsAt")),
        ends_at=_opt_float(r.get("endsAt")),
        **_common(r),
    )


def experiment_from_payload(exp: Mapping[str, Any]) -> Experiment:
    """A standalone GrowthBook experiment definition (``run``)."""
    fields = _common(exp)
    fields["variations"] = fields["variations"] or ()
    force = exp.get("force")
    return Experiment(
        key=str(exp.get("key", "")),
        force=int(force) if force is not None else None,
        active=exp.get("active", True) is not False,
        **fields,
    )


# --- writing ---------------------------------------------------------------------


def snapshot_to_payload(snapshot: Snapshot, *, now: float | None = None) -> dict[str, Any]:
    """The GrowthBook SDK payload of a snapshot.

    With ``now`` (epoch seconds) rules outside their schedule are left out,
    which is what an SDK endpoint serves; without it every rule is kept with its
    window, for a lossless copy.
    """
    features = {key: _feature_to_payload(feature, now) for key, feature in snapshot.features.items()}
    payload: dict[str, Any] = {"features": features}
    if snapshot.saved_groups:
        payload["savedGroups"] = {name: list(values) for name, values in snapshot.saved_groups.items()}
    date_updated = snapshot.date_updated if now is None else payload_date_updated(snapshot, now)
    if date_updated is not None:
        payload["dateUpdated"] = date_updated
    return payload


def _feature_to_payload(feature: Feature, now: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"defaultValue": feature.default_value, "valueType": feature.value_type}
    if feature.default_variant is not None:
        out["defaultVariant"] = feature.default_variant
    if not feature.enabled:
        out["enabled"] = False
        return out
    rules = [
        rule_to_payload(rule, with_window=now is None) for rule in feature.rules if now is None or rule.active_at(now)
    ]
    if rules:
        out["rules"] = rules
    return out


def _put(out: dict[str, Any], name: str, value: Any, default: Any = None) -> None:
    if value is not None and value != default:
        out[name] = value


def rule_to_payload(rule: Rule, *, with_window: bool = True) -> dict[str, Any]:
    """One rule in GrowthBook's shape (fields at their default are left out)."""
    out: dict[str, Any] = {}
    _put(out, "id", rule.id)
    _put(out, "condition", dict(rule.condition) if rule.condition else None)
    if rule.parent_conditions:
        out["parentConditions"] = [
            {"id": p.id, "condition": dict(p.condition), **({"gate": True} if p.gate else {})}
            for p in rule.parent_conditions
        ]
    if rule.is_force:
        out["force"] = rule.force
    _put(out, "forceVariant", rule.force_variant)
    if rule.variations is not None:
        out["variations"] = list(rule.variations)
    if rule.weights is not None:
        out["weights"] = list(rule.weights)
    _put(out, "coverage", rule.coverage)
    _put(out, "hashAttribute", rule.hash_attribute, "id")
    _put(out, "fallbackAttribute", rule.fallback_attribute)
    _put(out, "hashVersion", rule.hash_version, 1)
    _put(out, "seed", rule.seed)
    _put(out, "key", rule.key)
    _put(out, "name", rule.name)
    _put(out, "phase", rule.phase)
    if rule.namespace is not None:
        out["namespace"] = rule.namespace.as_list()
    if rule.range is not None:
        out["range"] = list(rule.range)
    if rule.ranges is not None:
        out["ranges"] = [list(r) for r in rule.ranges]
    if rule.filters is not None:
        out["filters"] = [_filter_to_payload(f) for f in rule.filters]
    if rule.meta is not None:
        out["meta"] = [_meta_to_payload(m) for m in rule.meta]
    if with_window:
        _put(out, "startsAt", rule.starts_at)
        _put(out, "endsAt", rule.ends_at)
    return out


def _filter_to_payload(flt: Filter) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": flt.seed, "ranges": [list(r) for r in flt.ranges]}
    _put(out, "attribute", flt.attribute)
    _put(out, "hashVersion", flt.hash_version, 2)
    return out


def _meta_to_payload(meta: VariationMeta) -> dict[str, Any]:
    out: dict[str, Any] = {"key": meta.key}
    _put(out, "name", meta.name)
    if meta.passthrough:
        out["passthrough"] = True
    return out


def payload_date_updated(snapshot: Snapshot, now: float) -> str | None:
    """``dateUpdated`` of the payload served at ``now``: the snapshot's own, or the last rule
    start or end that has passed since, whichever is later. GrowthBook SDKs keep a cached
    payload whose ``dateUpdated`` equals the one fetched, so a scheduled change must move it."""
    passed = [moment for moment in _schedule_moments(snapshot) if moment <= now]
    if not passed:
        return snapshot.date_updated
    boundary = _iso_utc(max(passed))
    if snapshot.date_updated is None or _parsed(snapshot.date_updated) < _parsed(boundary):
        return boundary
    return snapshot.date_updated


def _iso_utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parsed(iso: str) -> datetime:
    found = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def next_schedule_change(snapshot: Snapshot, now: float) -> float | None:
    """The first rule start or end after ``now``: when a payload written with
    ``now`` stops being accurate (None when no schedule is pending)."""
    return min((moment for moment in _schedule_moments(snapshot) if moment > now), default=None)


def _schedule_moments(snapshot: Snapshot) -> Iterator[float]:
    """Every rule start and end of the flags that are on."""
    for feature in snapshot.features.values():
        if feature.enabled:
            for rule in feature.rules:
                for moment in (rule.starts_at, rule.ends_at):
                    if moment is not None:
                        yield moment
