"""Immutable snapshot of one environment's flags, and evaluation results.

The shapes follow GrowthBook's feature definitions, so that the GrowthBook SDK
payload is a direct serialisation of a snapshot (see ``flags.engine.gbformat``). Rules
precompile their condition and bucket ranges when built; a snapshot indexes
its saved groups once, so evaluation does no parsing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Final, Literal

from flags.engine.conditions import GroupIndex, Matcher, compile_condition, index_groups, js_truthy
from traffic.assignment.bucketing import get_bucket_ranges
from traffic.assignment.types import BucketRange, Filter, Namespace

__all__ = [
    "UNSET",
    "Evaluation",
    "Experiment",
    "ExperimentAssignment",
    "Feature",
    "ParentCondition",
    "Reason",
    "Rule",
    "Snapshot",
    "Source",
    "ValueType",
    "VariationMeta",
]

ValueType = Literal["boolean", "string", "number", "json"]


class Reason(StrEnum):
    """Why a flag has its value (OpenFeature / OFREP reasons)."""

    STATIC = "STATIC"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DISABLED = "DISABLED"
    DEFAULT = "DEFAULT"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


class Source(StrEnum):
    """Where the value came from, in GrowthBook's terms."""

    UNKNOWN_FEATURE = "unknownFeature"
    DEFAULT_VALUE = "defaultValue"
    FORCE = "force"
    EXPERIMENT = "experiment"
    PREREQUISITE = "prerequisite"
    CYCLIC_PREREQUISITE = "cyclicPrerequisite"
    OVERRIDE = "override"


class _Unset:
    """Marks a rule that forces no value (``None`` is a JSON value of its own)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()


# Rule kinds, as the evaluation loop dispatches on them.
FORCE_ALWAYS, FORCE_ROLLOUT, EXPERIMENT, INERT = 0, 1, 2, 3


def _rebuild(cls: type[Any], kwargs: dict[str, Any]) -> Any:
    return cls(**kwargs)


class _Rebuildable:
    """Pickle by constructor arguments: compiled matchers are rebuilt on load."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name != "matcher"}  # type: ignore[arg-type]
        return (_rebuild, (type(self), kwargs))


def _compile(condition: Mapping[str, Any] | None) -> Matcher | None:
    # GrowthBook skips the check for an empty condition.
    return compile_condition(condition) if condition else None


@dataclass(frozen=True, slots=True)
class VariationMeta:
    """Our variant key (and display name) for one experiment variation."""

    key: str
    name: str | None = None
    passthrough: bool = False


@dataclass(frozen=True, slots=True)
class ParentCondition(_Rebuildable):
    """A prerequisite: flag ``id``'s value, as ``{"value": ...}``, must satisfy
    ``condition``. When ``gate`` is set, failing it blocks the whole flag."""

    id: str
    condition: Mapping[str, Any]
    gate: bool = False
    matcher: Matcher | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.matcher is None:
            object.__setattr__(self, "matcher", compile_condition(self.condition))


@dataclass(frozen=True, slots=True)
class Rule(_Rebuildable):
    """One ordered rule of a flag: a forced value (optionally a hashed rollout)
    or an experiment over ``variations``. Fields mirror GrowthBook's rule."""

    id: str | None = None
    condition: Mapping[str, Any] | None = None
    parent_conditions: tuple[ParentCondition, ...] = ()
    force: Any = UNSET
    force_variant: str | None = None
    variations: tuple[Any, ...] | None = None
    weights: tuple[float, ...] | None = None
    coverage: float | None = None
    hash_attribute: str = "id"
    fallback_attribute: str | None = None
    hash_version: int = 1
    seed: str | None = None
    key: str | None = None
    name: str | None = None
    phase: str | None = None
    namespace: Namespace | None = None
    range: BucketRange | None = None
    ranges: tuple[BucketRange, ...] | None = None
    filters: tuple[Filter, ...] | None = None
    meta: tuple[VariationMeta, ...] | None = None
    starts_at: float | None = None
    ends_at: float | None = None
    matcher: Matcher | None = field(default=None, compare=False, repr=False)
    # Derived once, used on every evaluation.
    bucket_ranges: tuple[BucketRange, ...] = field(init=False, compare=False, repr=False)
    variant_keys: tuple[str, ...] = field(init=False, compare=False, repr=False)
    reason: Reason = field(init=False, compare=False, repr=False)
    kind: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.matcher is None:
            object.__setattr__(self, "matcher", _compile(self.condition))
        if self.is_force:
            kind = FORCE_ROLLOUT if self.range is not None or self.coverage is not None else FORCE_ALWAYS
        else:
            kind = EXPERIMENT if self.variations is not None and len(self.variations) >= 2 else INERT
        object.__setattr__(self, "kind", kind)
        ranges: tuple[BucketRange, ...] = ()
        keys: tuple[str, ...] = ()
        if self.variations is not None:
            n = len(self.variations)
            if self.ranges:
                ranges = self.ranges
            else:
                coverage = 1.0 if self.coverage is None else self.coverage
                ranges = tuple(get_bucket_ranges(n, coverage, self.weights))
            meta = self.meta or ()
            keys = tuple(meta[i].key if i < len(meta) else str(i) for i in range(n))
        object.__setattr__(self, "bucket_ranges", ranges)
        object.__setattr__(self, "variant_keys", keys)
        object.__setattr__(self, "reason", self._reason())

    @property
    def is_force(self) -> bool:
        """Whether the rule forces a value (``None`` forces nothing, as in GrowthBook)."""
        return self.force is not UNSET and self.force is not None

    def _reason(self) -> Reason:
        if not self.is_force:
            return Reason.SPLIT
        if self.range is not None or self.coverage is not None or self.filters:
            # A percentage rollout: who gets the value is decided by the hash.
            return Reason.SPLIT
        if self.condition or self.parent_conditions:
            return Reason.TARGETING_MATCH
        return Reason.STATIC

    def active_at(self, now: float) -> bool:
        """Whether ``now`` (epoch seconds) is inside the rule's scheduled window."""
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at


@dataclass(frozen=True, slots=True)
class Experiment(_Rebuildable):
    """A standalone experiment, as GrowthBook's ``run`` takes it. ``force`` is a
    variation index; ``active=False`` keeps everybody out."""

    key: str
    variations: tuple[Any, ...]
    weights: tuple[float, ...] | None = None
    coverage: float | None = None
    condition: Mapping[str, Any] | None = None
    parent_conditions: tuple[ParentCondition, ...] = ()
    force: int | None = None
    active: bool = True
    hash_attribute: str = "id"
    fallback_attribute: str | None = None
    hash_version: int = 1
    seed: str | None = None
    name: str | None = None
    phase: str | None = None
    namespace: Namespace | None = None
    ranges: tuple[BucketRange, ...] | None = None
    filters: tuple[Filter, ...] | None = None
    meta: tuple[VariationMeta, ...] | None = None
    matcher: Matcher | None = field(default=None, compare=False, repr=False)
    bucket_ranges: tuple[BucketRange, ...] = field(init=False, compare=False, repr=False)
    variant_keys: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.matcher is None:
            object.__setattr__(self, "matcher", _compile(self.condition))
        n = len(self.variations)
        coverage = 1.0 if self.coverage is None else self.coverage
        ranges = self.ranges or tuple(get_bucket_ranges(n, coverage, self.weights))
        meta = self.meta or ()
        object.__setattr__(self, "bucket_ranges", ranges)
        object.__setattr__(self, "variant_keys", tuple(meta[i].key if i < len(meta) else str(i) for i in range(n)))


# (kind, rule, forced result, matcher, parent conditions, filters, has a schedule)
RulePlan = tuple[
    int, "Rule", "Evaluation | None", "Matcher | None", tuple["ParentCondition", ...], "tuple[Filter, ...] | None", bool
]


@dataclass(frozen=True, slots=True)
class Feature(_Rebuildable):
    """A flag in one environment: ordered rules over a default value.
    A disabled flag (kill switch) always serves its default value."""

    key: str
    default_value: Any = None
    default_variant: str | None = None
    rules: tuple[Rule, ...] = ()
    enabled: bool = True
    value_type: ValueType = "boolean"
    # Results that do not depend on the unit, built once: the default (or
    # disabled) result, and each force rule's result (None for other rules).
    default_result: Evaluation = field(init=False, compare=False, repr=False)
    rule_results: tuple[Evaluation | None, ...] = field(init=False, compare=False, repr=False)
    plan: tuple[RulePlan, ...] = field(init=False, compare=False, repr=False)
    # default_result when no rule can ever apply (disabled, or only inert rules without
    # prerequisites), else None.
    static_result: Evaluation | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.enabled:
            reason = Reason.DISABLED
        else:
            reason = Reason.DEFAULT if self.rules else Reason.STATIC
        default = Evaluation(self.key, self.default_value, self.default_variant, reason, Source.DEFAULT_VALUE)
        object.__setattr__(self, "default_result", default)
        results = tuple(
            Evaluation(self.key, r.force, r.force_variant, r.reason, Source.FORCE, r.id) if r.is_force else None
            for r in self.rules
        )
        object.__setattr__(self, "rule_results", results)
        # What the evaluation loop reads per rule, unpacked from one tuple.
        plan = tuple(
            (
                r.kind,
                r,
                result,
                r.matcher,
                r.parent_conditions,
                r.filters,
                r.starts_at is not None or r.ends_at is not None,
            )
            for r, result in zip(self.rules, results, strict=True)
        )
        object.__setattr__(self, "plan", plan)
        static = not self.enabled or all(step[0] == INERT and not step[4] for step in plan)
        object.__setattr__(self, "static_result", default if static else None)


@dataclass(frozen=True, slots=True)
class Snapshot(_Rebuildable):
    """Everything needed to evaluate one environment, compiled and immutable.
    ``version`` changes with every write, so caches can tell snapshots apart."""

    environment: str
    version: int
    features: Mapping[str, Feature]
    saved_groups: Mapping[str, tuple[Any, ...] | frozenset[Any]] = field(default_factory=dict)
    date_updated: str | None = None
    # What OpenFeature calls flag metadata: per flag, strings, numbers and booleans that describe
    # it (type, description, owner, tags); never used to evaluate.
    metadata: Mapping[str, Mapping[str, str | float | bool]] = field(default_factory=dict)
    group_index: GroupIndex = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", dict(self.features))
        object.__setattr__(self, "metadata", dict(self.metadata))
        object.__setattr__(self, "saved_groups", dict(self.saved_groups))
        object.__setattr__(self, "group_index", index_groups(self.saved_groups))


@dataclass(frozen=True, slots=True)
class ExperimentAssignment:
    """A unit's place in one experiment. ``in_experiment`` is false when the
    unit was excluded (then ``variation_id`` is 0 and nothing was hashed)."""

    key: str
    variation_id: int
    variation_key: str
    value: Any
    in_experiment: bool
    hash_attribute: str
    hash_value: Any
    hash_used: bool
    bucket: float | None = None
    feature_id: str | None = None
    variation_name: str | None = None
    passthrough: bool = False


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The value of one flag for one unit, with its variant key and why."""

    key: str
    value: Any
    variant: str | None
    reason: Reason
    source: Source
    rule_id: str | None = None
    experiment: ExperimentAssignment | None = None
    error_code: str | None = None
    # Passthrough variations the unit was placed in on the way (counted, then fell through).
    passthrough: tuple[ExperimentAssignment, ...] = ()

    @property
    def on(self) -> bool:
        """GrowthBook's "on": the value is truthy as JavaScript sees it."""
        return js_truthy(self.value)

    @property
    def off(self) -> bool:
        return not js_truthy(self.value)


def saved_groups_of(groups: Mapping[str, Iterable[Any]]) -> dict[str, tuple[Any, ...]]:
    """Saved groups with their members as tuples, as a snapshot stores them."""
    return {name: tuple(values) for name, values in groups.items()}
