"""Checks on flag configuration, independent of storage.

Each function returns a dict of field -> list of messages (empty when valid), so the
services can reject a write with every problem listed at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from base.keys import Errors, check_key
from flags.engine.conditions import validate_condition

VALUE_TYPES = ("boolean", "string", "number", "json")
RULE_KINDS = ("force", "rollout", "experiment")
WEIGHT_TOLERANCE = 1e-6

def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def value_matches_type(value: Any, value_type: str) -> bool:
    if value_type == "boolean":
        return isinstance(value, bool)
    if value_type == "string":
        return isinstance(value, str)
    if value_type == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value_type == "json"


def check_variants(value_type: str, variants: Sequence[Mapping[str, Any]]) -> Errors:
    errors: Errors = {}
    if value_type not in VALUE_TYPES:
        _add(errors, "value_type", f"Must be one of {', '.join(VALUE_TYPES)}.")
        return errors
    if not variants:
        _add(errors, "variants", "A flag needs at least one variant.")
    seen: set[str] = set()
    for i, variant in enumerate(variants):
        key = variant.get("key")
        if not isinstance(key, str) or check_key(key):
            errors.update(check_key(key, f"variants[{i}].key"))
        elif key in seen:
            _add(errors, f"variants[{i}].key", f"Duplicate variant key '{key}'.")
        else:
            seen.add(key)
        if "value" not in variant:
            _add(errors, f"variants[{i}].value", "A variant needs a value.")
        elif not value_matches_type(variant["value"], value_type):
            _add(errors, f"variants[{i}].value", f"Value does not match the flag type '{value_type}'.")
    return errors


def check_served_variants(variant_keys: Iterable[str], **served: str) -> Errors:
    errors: Errors = {}
    keys = set(variant_keys)
    for field, key in served.items():
        if key not in keys:
            _add(errors, field, f"Unknown variant '{key}'.")
    return errors


def check_condition(condition: Any, field: str = "condition") -> Errors:
    errors: Errors = {}
    if condition in (None, {}):
        return errors
    if not isinstance(condition, dict):
        _add(errors, field, "A condition must be a JSON object.")
        return errors
    for message in validate_condition(condition):
        _add(errors, field, message)
    return errors


def check_prerequisites(
    prerequisites: Any, *, flag_key: str, known_flags: Iterable[str], field: str = "prerequisites"
) -> Errors:
    errors: Errors = {}
    if not isinstance(prerequisites, list):
        _add(errors, field, "Prerequisites must be a list of {flag, condition}.")
        return errors
    known = set(known_flags)
    for i, item in enumerate(prerequisites):
        if not isinstance(item, dict) or not isinstance(item.get("flag"), str):
            _add(errors, f"{field}[{i}]", "Each prerequisite needs a 'flag' key.")
            continue
        parent = item["flag"]
        if parent == flag_key:
            _add(errors, f"{field}[{i}].flag", "A flag cannot require itself.")
        elif parent not in known:
            _add(errors, f"{field}[{i}].flag", f"Unknown flag '{parent}'.")
        cond = item.get("condition", {"value": True})
        errors.update(check_condition(cond, f"{field}[{i}].condition"))
    return errors


def find_cycle(edges: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one dependency cycle (as a path of flag keys) or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if state.get(start) is None:
            found = visit(start)
            if found:
                return found
    return None


def check_rule(
    rule: Mapping[str, Any],
    *,
    variant_keys: Iterable[str],
    segment_keys: Iterable[str],
    holdout_keys: Iterable[str] = (),
) -> Errors:
    """Validate one rule's fields (prerequisites are checked by the caller with the flag graph)."""
    errors: Errors = {}
    keys = set(variant_keys)
    kind = rule.get("kind")
    if kind not in RULE_KINDS:
        _add(errors, "kind", f"Must be one of {', '.join(RULE_KINDS)}.")
        return errors
    errors.update(check_condition(rule.get("condition")))
    segments = rule.get("segments") or []
    if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
        _add(errors, "segments", "Segments must be a list of segment keys.")
    else:
        known_segments = set(segment_keys)
        for key in segments:
            if key not in known_segments:
                _add(errors, "segments", f"Unknown segment '{key}'.")
    coverage = rule.get("coverage", 1.0)
    if not isinstance(coverage, (int, float)) or isinstance(coverage, bool) or not 0.0 <= coverage <= 1.0:
        _add(errors, "coverage", "Coverage must be a number between 0 and 1.")
    if kind in ("force", "rollout") and rule.get("variant") not in keys:
        _add(errors, "variant", f"Unknown variant '{rule.get('variant')}'.")
    hashed = kind in ("rollout", "experiment") or (kind == "force" and _is_partial(coverage))
    if hashed and not rule.get("hash_attribute"):
        _add(errors, "hash_attribute", "A hashed rule needs a hash attribute (a force rule with a coverage below 1 "
                                       "is a percentage rollout).")
    if kind == "experiment":
        errors.update(_check_split(rule.get("variations"), rule.get("weights"), keys))
    holdout = rule.get("holdout") or ""
    if not isinstance(holdout, str):
        _add(errors, "holdout", "Give a holdout key.")
    elif holdout and kind != "experiment":
        _add(errors, "holdout", "Only experiment rules take a holdout.")
    elif holdout and holdout not in set(holdout_keys):
        _add(errors, "holdout", f"Unknown holdout '{holdout}'.")
    starts, ends = rule.get("starts_at"), rule.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        _add(errors, "ends_at", "The end of the schedule must be after its start.")
    return errors


def _is_partial(coverage: Any) -> bool:
    return isinstance(coverage, (int, float)) and not isinstance(coverage, bool) and coverage < 1.0


def _check_split(variations: Any, weights: Any, keys: set[str]) -> Errors:
    errors: Errors = {}
    if not isinstance(variations, list) or len(variations) < 2:
        _add(errors, "variations", "An experiment needs at least two variations.")
        return errors
    for key in variations:
        if key not in keys:
            _add(errors, "variations", f"Unknown variant '{key}'.")
    if len(set(map(str, variations))) != len(variations):
        _add(errors, "variations", "A variant appears twice.")
    if not isinstance(weights, list) or len(weights) != len(variations):
        _add(errors, "weights", "Give one weight per variation.")
        return errors
    if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in weights):
        _add(errors, "weights", "Weights must be non-negative numbers.")
    elif abs(sum(weights) - 1.0) > WEIGHT_TOLERANCE:
        _add(errors, "weights", f"Weights must sum to 1 (they sum to {sum(weights):.6g}).")
    return errors
