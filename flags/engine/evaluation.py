"""Flag evaluation over a compiled snapshot: pure, deterministic, GrowthBook-compatible.

A flag's rules are tried in order. A rule is skipped when it is outside its
scheduled window, when a prerequisite does not hold, when its condition or range
filters exclude the unit, or when the unit is outside its rollout or experiment.
The first rule that applies decides the value; otherwise the default applies.
A unit gets the same variation here as from a GrowthBook SDK fed the payload
``flags.engine.gbformat.snapshot_to_payload`` makes of the same snapshot.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from flags.engine.conditions import GroupIndex, index_groups
from flags.engine.limits import EVALUATION_MAX_PREREQUISITE_CHAIN
from flags.engine.types import (
    EXPERIMENT,
    FORCE_ALWAYS,
    FORCE_ROLLOUT,
    INERT,
    Evaluation,
    Experiment,
    ExperimentAssignment,
    Feature,
    ParentCondition,
    Reason,
    Rule,
    Snapshot,
    Source,
)
from traffic.assignment.bucketing import (
    hash_string,
    in_namespace,
    is_filtered_out,
    resolve_hash_value,
)
from traffic.assignment.hashing import hash_v1, hash_v2

__all__ = ["ERROR_FLAG_NOT_FOUND", "ERROR_GENERAL", "evaluate", "evaluate_all", "prerequisites_of", "run_experiment"]

ERROR_FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
ERROR_GENERAL = "GENERAL"

_GATE, _SKIP, _CYCLE = "gate", "skip", "cycle"

# The same unit meets the same rollouts and experiments again (every flag of a bulk call,
# every call of a client): its version-2 hashes are kept, a few thousand at a time.
_hash_v2 = functools.lru_cache(maxsize=8192)(hash_v2)


class _Context:
    """Per-call state: the unit, the clock, and results of flags already evaluated
    (prerequisites are often shared, and a result does not depend on the path)."""

    __slots__ = ("attributes", "features", "forced", "groups", "memo", "now", "overrides", "stack")

    def __init__(
        self,
        features: Mapping[str, Feature],
        groups: GroupIndex,
        attributes: Mapping[str, Any],
        now: float | None,
        forced: Mapping[str, int] | None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.features = features
        self.groups = groups
        self.attributes = attributes
        self.now = time.time() if now is None else now
        self.forced = forced or {}
        self.overrides = overrides or {}
        self.memo: dict[str, Evaluation] = {}
        self.stack: list[str] = []


def evaluate(
    snapshot: Snapshot,
    key: str,
    attributes: Mapping[str, Any],
    *,
    now: float | None = None,
    forced_variations: Mapping[str, int] | None = None,
) -> Evaluation:
    """Evaluate flag ``key`` for the unit described by ``attributes``.

    ``now`` (epoch seconds, default the current time) decides scheduled rules;
    ``forced_variations`` maps experiment keys to a variation index to serve
    (for QA), bypassing the hash.
    """
    ctx = _Context(snapshot.features, snapshot.group_index, attributes, now, forced_variations)
    return _evaluate(ctx, key)


def evaluate_all(
    snapshot: Snapshot,
    attributes: Mapping[str, Any],
    keys: Iterable[str] | None = None,
    *,
    now: float | None = None,
    forced_variations: Mapping[str, int] | None = None,
    forced_values: Mapping[str, Any] | None = None,
) -> dict[str, Evaluation]:
    """Evaluate every flag of the snapshot (or only ``keys``) for one unit.

    ``forced_values`` maps flag keys to a value served as is (GrowthBook's forced features,
    for QA): the flag is not evaluated, and flags that name it as a prerequisite see that
    value."""
    ctx = _Context(snapshot.features, snapshot.group_index, attributes, now, forced_variations, forced_values)
    wanted = snapshot.features if keys is None else keys
    memo = ctx.memo
    results: dict[str, Evaluation] = {}
    features = snapshot.features
    overrides = ctx.overrides
    for key in wanted:
        # Inlined _evaluate: prerequisites may have filled the memo already.
        result = memo.get(key)
        if result is None:
            feature = features.get(key)
            if feature is not None and feature.static_result is not None and not overrides:
                # No rule can apply: the default (or disabled) result, as _evaluate_feature gives it.
                results[key] = memo[key] = feature.static_result
                continue
            result = _evaluate_feature(ctx, key)
            if result.source is not Source.CYCLIC_PREREQUISITE:
                memo[key] = result
        results[key] = result
    return results


def prerequisites_of(snapshot: Snapshot, key: str) -> tuple[str, ...]:
    """The flags evaluating `key` may evaluate in turn: its rules' prerequisites, transitively
    (cycles included once), in the order first met; unknown keys are left out."""
    seen: dict[str, None] = {}
    pending = [key]
    while pending:
        feature = snapshot.features.get(pending.pop())
        if feature is None:
            continue
        for rule in feature.rules:
            for parent in rule.parent_conditions:
                if parent.id != key and parent.id not in seen and parent.id in snapshot.features:
                    seen[parent.id] = None
                    pending.append(parent.id)
    return tuple(seen)


def run_experiment(
    experiment: Experiment,
    attributes: Mapping[str, Any],
    *,
    snapshot: Snapshot | None = None,
    saved_groups: Mapping[str, Iterable[object]] | None = None,
    forced_variations: Mapping[str, int] | None = None,
    feature_id: str | None = None,
    now: float | None = None,
) -> ExperimentAssignment:
    """Assign a unit to a standalone experiment (GrowthBook's ``run``).

    Prerequisites are looked up in ``snapshot``; saved groups come from the
    snapshot unless ``saved_groups`` is given.
    """
    features: Mapping[str, Feature] = snapshot.features if snapshot is not None else {}
    groups: GroupIndex
    if saved_groups is not None:
        groups = index_groups(saved_groups)
    else:
        groups = snapshot.group_index if snapshot is not None else {}
    ctx = _Context(features, groups, attributes, now, forced_variations)
    exp = experiment
    n = len(exp.variations)
    if n < 2:
        return _assignment(ctx, exp.key, exp, -1, feature_id)
    forced = ctx.forced.get(exp.key)
    if forced is not None:
        return _assignment(ctx, exp.key, exp, forced, feature_id)
    if not exp.active:
        return _assignment(ctx, exp.key, exp, -1, feature_id)
    if exp.matcher is not None and not exp.matcher(attributes, groups):
        return _assignment(ctx, exp.key, exp, -1, feature_id)
    if exp.parent_conditions and _check_parents(ctx, exp.parent_conditions) is not None:
        return _assignment(ctx, exp.key, exp, -1, feature_id)
    index, bucket = _bucket(ctx, exp.key, exp)
    if index >= 0 and exp.force is not None:
        return _assignment(ctx, exp.key, exp, exp.force, feature_id)
    return _assignment(ctx, exp.key, exp, index, feature_id, bucket)


# --- internals ---------------------------------------------------------------


def _evaluate(ctx: _Context, key: str) -> Evaluation:
    done = ctx.memo.get(key)
    if done is not None:
        return done
    result = _evaluate_feature(ctx, key)
    if result.source is not Source.CYCLIC_PREREQUISITE:
        # Without a cycle the result cannot depend on how we got here.
        ctx.memo[key] = result
    return result


def _evaluate_feature(ctx: _Context, key: str) -> Evaluation:
    if ctx.overrides and key in ctx.overrides:
        return Evaluation(key, ctx.overrides[key], None, Reason.STATIC, Source.OVERRIDE)
    feature = ctx.features.get(key)
    if feature is None:
        return Evaluation(key, None, None, Reason.ERROR, Source.UNKNOWN_FEATURE, error_code=ERROR_FLAG_NOT_FOUND)
    if key in ctx.stack or len(ctx.stack) >= EVALUATION_MAX_PREREQUISITE_CHAIN:
        # A chain this long was written around validation; it is answered as a cycle is.
        return _cyclic(key)
    if not feature.enabled:
        return feature.default_result
    attributes = ctx.attributes
    groups = ctx.groups
    passed: tuple[ExperimentAssignment, ...] = ()
    for kind, rule, forced_result, matcher, parents, filters, scheduled in feature.plan:
        if kind == INERT and not parents:
            continue
        if scheduled and not rule.active_at(ctx.now):
            continue
        if parents:
            ctx.stack.append(key)
            try:
                verdict = _check_parents(ctx, parents)
            finally:
                ctx.stack.pop()
            if verdict is _GATE:
                return _passed(Evaluation(key, None, None, Reason.DEFAULT, Source.PREREQUISITE), passed)
            if verdict is _CYCLE:
                return _cyclic(key)
            if verdict is _SKIP:
                continue
        if matcher is not None and not matcher(attributes, groups):
            continue
        if filters and is_filtered_out(filters, attributes):
            continue
        if kind == FORCE_ALWAYS:
            return _passed(forced_result, passed)  # type: ignore[arg-type]
        if kind == FORCE_ROLLOUT:
            if _in_rollout(ctx, key, rule):
                return _passed(forced_result, passed)  # type: ignore[arg-type]
            continue
        if kind != EXPERIMENT:
            continue
        exp_key = rule.key or key
        forced = ctx.forced.get(exp_key) if ctx.forced else None
        if forced is not None:
            variation, bucket = forced, None
        else:
            variation, bucket = _bucket(ctx, exp_key, rule)
        variations = rule.variations or ()
        if variation < 0 or variation >= len(variations):
            continue
        assignment = _assignment(ctx, exp_key, rule, variation, key, bucket)
        if assignment.passthrough:
            # Counted (an exposure is recorded), then the next rules decide, as in GrowthBook.
            passed = (*passed, assignment)
            continue
        return _passed(Evaluation(
            key, assignment.value, assignment.variation_key, Reason.SPLIT, Source.EXPERIMENT, rule.id, assignment
        ), passed)
    return _passed(feature.default_result, passed)


def _passed(result: Evaluation, passed: tuple[ExperimentAssignment, ...]) -> Evaluation:
    return result if not passed else replace(result, passthrough=passed)



def _cyclic(key: str) -> Evaluation:
    return Evaluation(key, None, None, Reason.ERROR, Source.CYCLIC_PREREQUISITE, error_code=ERROR_GENERAL)


def _check_parents(ctx: _Context, parents: tuple[ParentCondition, ...]) -> str | None:
    """None when every prerequisite holds, else _GATE, _SKIP or _CYCLE."""
    for parent in parents:
        result = _evaluate(ctx, parent.id)
        if result.source is Source.CYCLIC_PREREQUISITE:
            return _CYCLE
        matcher = parent.matcher
        if matcher is not None and not matcher({"value": result.value}, ctx.groups):
            return _GATE if parent.gate else _SKIP
    return None


def _in_rollout(ctx: _Context, key: str, rule: Rule) -> bool:
    """``is_included_in_rollout`` for a rule, inlined: it runs for every rollout rule reached."""
    bucket_range = rule.range
    coverage = rule.coverage
    if bucket_range is None:
        if coverage is None:
            return True
        if coverage == 0:
            return False
    raw = ctx.attributes.get(rule.hash_attribute)
    if type(raw) is str and raw:
        value = raw
    else:
        value = hash_string(resolve_hash_value(ctx.attributes, rule.hash_attribute, rule.fallback_attribute)[1])
        if value == "":
            return False
    version = rule.hash_version or 1
    if version == 2:
        n = _hash_v2(rule.seed or key, value)
    elif version == 1:
        n = hash_v1(rule.seed or key, value)
    else:
        return False
    if bucket_range is not None:
        return bucket_range[0] <= n < bucket_range[1]
    return n < coverage  # type: ignore[operator]  # not None: checked above


def _bucket(ctx: _Context, exp_key: str, spec: Rule | Experiment) -> tuple[int, float | None]:
    """The variation a unit hashes into (-1 when excluded) and its hash."""
    raw = ctx.attributes.get(spec.hash_attribute)
    value = raw if type(raw) is str else hash_string(raw)
    if not value:
        return -1, None
    if spec.filters:
        if is_filtered_out(spec.filters, ctx.attributes):
            return -1, None
    elif spec.namespace is not None and not in_namespace(value, spec.namespace):
        return -1, None
    version = spec.hash_version or 1
    seed = spec.seed or exp_key
    if version == 2:
        n = _hash_v2(seed, value)
    elif version == 1:
        n = hash_v1(seed, value)
    else:
        return -1, None
    for index, (start, end) in enumerate(spec.bucket_ranges):
        if start <= n < end:
            return index, n
    return -1, None


def _assignment(
    ctx: _Context,
    exp_key: str,
    spec: Rule | Experiment,
    index: int,
    feature_id: str | None,
    bucket: float | None = None,
) -> ExperimentAssignment:
    variations = spec.variations or ()
    in_experiment = 0 <= index < len(variations)
    if not in_experiment:
        index = 0
    # Experiments take no fallback attribute (GrowthBook uses it only with sticky bucketing).
    attribute = spec.hash_attribute
    raw = ctx.attributes.get(attribute)
    if type(raw) is not str or not raw:
        attribute, raw = resolve_hash_value(ctx.attributes, attribute)
    meta = spec.meta[index] if spec.meta is not None and index < len(spec.meta) else None
    keys = spec.variant_keys
    return ExperimentAssignment(
        key=exp_key,
        variation_id=index,
        variation_key=keys[index] if index < len(keys) else str(index),
        value=variations[index] if variations else None,
        in_experiment=in_experiment,
        hash_attribute=attribute,
        hash_value=raw,
        hash_used=bucket is not None and in_experiment,
        bucket=bucket if in_experiment else None,
        feature_id=feature_id,
        variation_name=meta.name if meta is not None else None,
        passthrough=meta.passthrough if meta is not None else False,
    )
