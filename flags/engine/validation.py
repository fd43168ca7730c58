"""Checks on flag configuration, independent of storage.

Each function returns a dict of field -> list of messages (empty when valid), so the
services can reject a write with every problem listed at once. Every write path (the
services, rule sets, segments, ramps, experiments) runs them, so that nothing is stored
that the serving path cannot compile: the size limits are those of ``flags.engine.limits``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from base.keys import Errors, check_key
from flags.engine.conditions import validate_condition
from flags.engine.limits import (
    METADATA_KEY_MAX_LENGTH,
    METADATA_MAX_INTEGER,
    METADATA_MAX_KEYS,
    METADATA_MAX_STRING,
    PREREQUISITES_MAX,
    SEGMENT_ID_MAX_LENGTH,
    SEGMENT_MAX_IDS,
    condition_limit_errors,
    value_limit_errors,
)

VALUE_TYPES = ("boolean", "string", "number", "json")
RULE_KINDS = ("force", "rollout", "experiment")
WEIGHT_TOLERANCE = 1e-6
# A metadata key: a letter, then letters, digits, '_', '.', ':' or '-' (up to the length limit).
METADATA_KEY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*")
# The keys every flag's OpenFeature metadata already carries (``flags.mappers.flag_metadata``).
METADATA_RESERVED_KEYS = ("type", "name", "description", "owner", "tags")
_END = object()


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
        else:
            for message in value_limit_errors(variant["value"]):
                _add(errors, f"variants[{i}].value", message)
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
    # Only a condition within the limits is checked in detail: the detailed check recurses.
    for message in condition_limit_errors(condition) or validate_condition(condition):
        _add(errors, field, message)
    return errors


def check_segment_ids(ids: Any, field: str = "ids") -> Errors:
    """The ids of an id-list segment: strings or numbers, within the limits."""
    errors: Errors = {}
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        _add(errors, field, "Give a list of ids (strings or numbers).")
    elif len(ids) > SEGMENT_MAX_IDS:
        _add(errors, field, f"At most {SEGMENT_MAX_IDS:,} ids (this list has {len(ids):,}).")
    else:
        for index, item in enumerate(ids):
            if len(str(item)) > SEGMENT_ID_MAX_LENGTH:
                _add(errors, field, f"{field}[{index}]: longer than {SEGMENT_ID_MAX_LENGTH} characters.")
                break
    return errors


def check_metadata(metadata: Any, field: str = "metadata") -> Errors:
    """A flag's free-form metadata: a JSON object of at most ``METADATA_MAX_KEYS`` keys, each
    matching ``METADATA_KEY_PATTERN`` in 1 to ``METADATA_KEY_MAX_LENGTH`` characters and none of
    ``METADATA_RESERVED_KEYS``, whose values are strings (at most ``METADATA_MAX_STRING``
    characters), finite numbers (integers within +/- ``METADATA_MAX_INTEGER``) or booleans:
    no null, list or object. Every problem is listed, under ``<field>.<key>`` for one entry."""
    errors: Errors = {}
    if not isinstance(metadata, Mapping):
        _add(errors, field, "Give a JSON object of keys to strings, numbers or booleans.")
        return errors
    if len(metadata) > METADATA_MAX_KEYS:
        _add(errors, field, f"At most {METADATA_MAX_KEYS} keys (this object has {len(metadata)}).")
        return errors
    for key, value in metadata.items():
        if not isinstance(key, str):
            _add(errors, field, "Keys must be strings.")
            continue
        where = f"{field}.{key[:METADATA_KEY_MAX_LENGTH]}"
        if not 1 <= len(key) <= METADATA_KEY_MAX_LENGTH:
            _add(errors, where, f"A key has 1 to {METADATA_KEY_MAX_LENGTH} characters (this one has {len(key)}).")
        elif not METADATA_KEY_PATTERN.fullmatch(key):
            _add(errors, where, "A key starts with a letter, followed by letters, digits, '_', '.', ':' or '-'.")
        elif key in METADATA_RESERVED_KEYS:
            _add(errors, where, f"'{key}' is reserved: every flag's metadata carries its "
                                f"{', '.join(METADATA_RESERVED_KEYS)} already.")
        for message in _metadata_value_errors(value):
            _add(errors, where, message)
    return errors


def _metadata_value_errors(value: Any) -> list[str]:
    if isinstance(value, bool):
        return []
    if isinstance(value, str):
        if len(value) > METADATA_MAX_STRING:
            return [f"A string value has at most {METADATA_MAX_STRING} characters (this one has {len(value)})."]
        return []
    if isinstance(value, int):
        if abs(value) > METADATA_MAX_INTEGER:
            return [f"An integer value lies within -{METADATA_MAX_INTEGER} and {METADATA_MAX_INTEGER}."]
        return []
    if isinstance(value, float):
        return [] if math.isfinite(value) else ["A number value must be finite."]
    found = "null" if value is None else "a list" if isinstance(value, list | tuple) else (
        "an object" if isinstance(value, Mapping) else type(value).__name__)
    return [f"A value is a string, a number or a boolean, not {found}."]


def check_prerequisites(
    prerequisites: Any, *, flag_key: str, known_flags: Iterable[str], field: str = "prerequisites"
) -> Errors:
    errors: Errors = {}
    if not isinstance(prerequisites, list):
        _add(errors, field, "Prerequisites must be a list of {flag, condition}.")
        return errors
    if len(prerequisites) > PREREQUISITES_MAX:
        _add(errors, field, f"At most {PREREQUISITES_MAX} prerequisites.")
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
    """Return one dependency cycle (as a path of flag keys) or None. Iterative, so a chain of
    any length is walked."""
    state: dict[str, int] = {}
    for start in sorted(edges):
        if start in state:
            continue
        state[start] = 1
        stack = [start]
        pending = [iter(edges.get(start, ()))]
        while pending:
            nxt = next(pending[-1], _END)
            if nxt is _END:
                state[stack.pop()] = 2
                pending.pop()
                continue
            key = str(nxt)
            if state.get(key) == 1:
                return [*stack[stack.index(key) :], key]
            if key not in state:
                state[key] = 1
                stack.append(key)
                pending.append(iter(edges.get(key, ())))
    return None


def _longest_path(edges: Mapping[str, Iterable[str]], start: str) -> list[str]:
    """The longest path of edges from `start`, as its nodes (an edge that closes a cycle is
    not followed)."""
    best: dict[str, tuple[int, str | None]] = {}
    on_path = {start}
    stack = [(start, iter(edges.get(start, ())))]
    while stack:
        node, children = stack[-1]
        child = next(children, _END)
        if child is _END:
            stack.pop()
            on_path.discard(node)
            length, via = 0, None
            for key in map(str, edges.get(node, ())):
                if key in best and best[key][0] + 1 > length:
                    length, via = best[key][0] + 1, key
            best[node] = (length, via)
        elif (key := str(child)) not in best and key not in on_path:
            on_path.add(key)
            stack.append((key, iter(edges.get(key, ()))))
    path = [start]
    while (step := best[path[-1]][1]) is not None:
        path.append(step)
    return path


def longest_chain_through(edges: Mapping[str, Iterable[str]], key: str) -> list[str]:
    """The longest chain of requirements that goes through `key`, as the flag keys from the
    flag that requires the most down to the last one required (`[key]` alone: no chain)."""
    required_by: dict[str, list[str]] = {}
    for node, parents in edges.items():
        for parent in parents:
            required_by.setdefault(str(parent), []).append(node)
    above = _longest_path(required_by, key)
    below = _longest_path(edges, key)
    return [*reversed(above), *below[1:]]


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
    elif holdout and kind == "rollout":
        _add(errors, "holdout", "Only experiment rules (units held out never enter) and force rules (serve the "
                                "holdout's own units) take a holdout.")
    elif holdout and kind == "force" and _is_partial(coverage):
        _add(errors, "holdout", "A force rule for a holdout serves every held-out unit: leave its coverage at 1.")
    elif holdout and holdout not in set(holdout_keys):
        _add(errors, "holdout", f"Unknown holdout '{holdout}'.")
    errors.update(_check_passthrough(rule.get("passthrough"), kind, rule.get("variations")))
    starts, ends = rule.get("starts_at"), rule.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        _add(errors, "ends_at", "The end of the schedule must be after its start.")
    return errors


def _check_passthrough(passthrough: Any, kind: Any, variations: Any) -> Errors:
    errors: Errors = {}
    if not passthrough:
        return errors
    if not isinstance(passthrough, list) or not all(isinstance(k, str) for k in passthrough):
        _add(errors, "passthrough", "Give a list of variant keys.")
    elif kind != "experiment":
        _add(errors, "passthrough", "Only experiment rules have passthrough variations.")
    elif not isinstance(variations, list) or not set(passthrough) < set(map(str, variations)):
        _add(errors, "passthrough", "Passthrough variations are some, not all, of the rule's variations.")
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
