"""How large and how deep configuration may be, so that whatever is accepted compiles,
serialises and evaluates in bounded time and stack in every server process and SDK.

Validation (``flags.engine.validation``) refuses a write beyond these limits with a message
naming the field; docs/api.md (Limits) lists them. The serving path has hard bounds of its own,
well above the validation limits, for rows that were written around validation: compilation
refuses a condition deeper than ``COMPILE_MAX_DEPTH`` (``flags.engine.conditions``), the
snapshot builder leaves out a flag whose value is deeper than ``SERVE_VALUE_MAX_DEPTH`` and
evaluation stops a prerequisite chain longer than ``EVALUATION_MAX_PREREQUISITE_CHAIN``.

Depth counts the objects and lists a value is nested in, as the API's body limit does
(``JSON_MAX_DEPTH``): a scalar is level 0, ``{"plan": "pro"}`` is 1,
``{"country": {"$in": ["DE"]}}`` is 3.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "COMPILE_MAX_DEPTH",
    "CONDITION_MAX_BYTES",
    "CONDITION_MAX_DEPTH",
    "CONDITION_MAX_KEYS",
    "CONDITION_MAX_LIST",
    "CONDITION_MAX_STRING",
    "EVALUATION_MAX_PREREQUISITE_CHAIN",
    "METADATA_KEY_MAX_LENGTH",
    "METADATA_MAX_INTEGER",
    "METADATA_MAX_KEYS",
    "METADATA_MAX_STRING",
    "PREREQUISITES_MAX",
    "PREREQUISITE_MAX_CHAIN",
    "SEGMENT_ID_MAX_LENGTH",
    "SEGMENT_MAX_IDS",
    "SERVE_VALUE_MAX_DEPTH",
    "VALUE_MAX_BYTES",
    "VALUE_MAX_DEPTH",
    "condition_limit_errors",
    "depth_exceeds",
    "json_size",
    "value_limit_errors",
]

# Conditions of rules, condition segments, prerequisites and experiments. GrowthBook's own
# condition builder writes conditions 3 to 7 levels deep with a handful of operators.
CONDITION_MAX_DEPTH = 16
# Attribute tests and operators: every key of every object in the condition.
CONDITION_MAX_KEYS = 500
# Characters of any string in a condition: attribute names, values, regular expressions.
CONDITION_MAX_STRING = 1_000
# Members of one list ($in, $nin, $all, $or, ...); longer lists of ids belong in an id-list segment.
CONDITION_MAX_LIST = 1_000
# The condition as compact JSON, UTF-8.
CONDITION_MAX_BYTES = 64 * 1024

# Id-list segments (saved groups).
SEGMENT_MAX_IDS = 100_000
SEGMENT_ID_MAX_LENGTH = 256

# Variant values (any type; only json and string values can grow), as compact JSON, UTF-8.
VALUE_MAX_DEPTH = 20
VALUE_MAX_BYTES = 64 * 1024

# A flag's free-form metadata (OpenFeature flag metadata): keys, the length of one key and of
# one string value, and the largest integer, the largest every SDK's number reads exactly
# (JavaScript's Number.MAX_SAFE_INTEGER).
METADATA_MAX_KEYS = 32
METADATA_KEY_MAX_LENGTH = 64
METADATA_MAX_STRING = 256
METADATA_MAX_INTEGER = 2**53 - 1

# Prerequisites of one flag or one rule, and the longest chain of flags requiring one another
# (a flag requiring b requiring c is a chain of 2).
PREREQUISITES_MAX = 20
PREREQUISITE_MAX_CHAIN = 16

# Hard bounds of the serving path. A rule's condition is joined with its segments' under
# "$and", two levels more; the SDK payload wraps a condition or value in eight more levels,
# far below the 255 that JSON serialisation takes; each level costs compilation and
# evaluation two to three stack frames, far below the interpreter's recursion limit.
COMPILE_MAX_DEPTH = 64
SERVE_VALUE_MAX_DEPTH = 64
EVALUATION_MAX_PREREQUISITE_CHAIN = 64


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests objects or lists more than `limit` levels deep; iterative, so
    it answers for any depth."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (Mapping, list, tuple)))
    return False


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON in UTF-8 (call only on a value within a depth limit)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", "surrogatepass"))


def _number(n: int) -> str:
    return f"{n:,}"


def _depth_message(path: str, limit: int) -> str:
    prefix = f"{path}: " if path else ""
    return f"{prefix}nested deeper than {limit} levels (objects and lists)."


def value_limit_errors(value: Any) -> list[str]:
    """Problems of a variant value beyond the limits (an empty list when within them)."""
    if depth_exceeds(value, VALUE_MAX_DEPTH):
        return [_depth_message("", VALUE_MAX_DEPTH)]
    if json_size(value) > VALUE_MAX_BYTES:
        return [f"larger than {_number(VALUE_MAX_BYTES)} bytes as JSON."]
    return []


def condition_limit_errors(condition: Any, path: str = "condition") -> list[str]:
    """Problems of a condition beyond the limits, each prefixed with where it is (the first
    place of each kind). When the list is empty, the condition is small enough to check in
    detail and to compile."""
    if depth_exceeds(condition, CONDITION_MAX_DEPTH):
        return [_depth_message(path, CONDITION_MAX_DEPTH)]
    errors: list[str] = []
    keys = 0
    long_string = long_list = None
    chars = f"longer than {_number(CONDITION_MAX_STRING)} characters"
    stack: list[tuple[Any, str]] = [(condition, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, Mapping):
            keys += len(item)
            for key in item:
                if long_string is None and isinstance(key, str) and len(key) > CONDITION_MAX_STRING:
                    long_string = f"{where}: an attribute name {chars}."
            stack.extend((child, f"{where}.{key}") for key, child in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            if long_list is None and len(item) > CONDITION_MAX_LIST:
                long_list = (f"{where}: a list of more than {_number(CONDITION_MAX_LIST)} values "
                             f"(put long lists of ids in an id-list segment).")
            stack.extend((child, f"{where}[{i}]") for i, child in reversed(list(enumerate(item))))
        elif isinstance(item, str) and long_string is None and len(item) > CONDITION_MAX_STRING:
            long_string = f"{where}: {chars}."
    if keys > CONDITION_MAX_KEYS:
        errors.append(f"{path}: more than {_number(CONDITION_MAX_KEYS)} attribute tests and operators.")
    errors.extend(message for message in (long_list, long_string) if message is not None)
    if not errors and json_size(condition) > CONDITION_MAX_BYTES:
        errors.append(f"{path}: larger than {_number(CONDITION_MAX_BYTES)} bytes as JSON.")
    return errors
