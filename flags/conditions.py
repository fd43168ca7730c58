"""Targeting conditions: MongoDB-style operators over context attributes.

The semantics follow GrowthBook's JavaScript SDK, the reference the shared
conformance cases are written against: a missing attribute reads as null,
plain values compare the way JavaScript coerces them (``{"age": 30}`` matches
``"30"``), relational operators use JavaScript's ordering (null counts as 0,
numeric strings as numbers), array attributes intersect with ``$in``, and
version operators compare padded version strings. Nothing here raises on bad
input: a condition that cannot be evaluated simply does not match.

``compile_condition`` resolves the operator dispatch, regexes and lookup sets
once; ``eval_condition`` compiles and evaluates in one go; ``validate_condition``
lists problems for people editing conditions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from traffic.bucketing import js_number_to_string

__all__ = [
    "LOGICAL_OPERATORS",
    "VALUE_OPERATORS",
    "GroupIndex",
    "Matcher",
    "compile_condition",
    "eval_condition",
    "index_groups",
    "validate_condition",
]

# Members of an $in list or a saved group. Booleans are wrapped so that True
# and 1 (equal in Python, distinct in JavaScript) stay apart.
MemberSet = frozenset[object]
# Saved groups prepared for membership tests: group id -> member set.
GroupIndex = Mapping[str, MemberSet]
# A compiled condition: (attributes, saved group index) -> matches.
Matcher = Callable[[Any, GroupIndex], bool]
_ValuePred = Callable[[Any, GroupIndex], bool]

LOGICAL_OPERATORS = frozenset({"$or", "$nor", "$and", "$not"})
VALUE_OPERATORS = frozenset(
    {
        "$eq", "$ne", "$lt", "$lte", "$gt", "$gte",
        "$veq", "$vne", "$vlt", "$vlte", "$vgt", "$vgte",
        "$exists", "$type", "$regex", "$regexi",
        "$in", "$nin", "$ini", "$nini", "$all", "$alli",
        "$elemMatch", "$size", "$not", "$inGroup", "$notInGroup",
    }
)  # fmt: skip
_TYPES = frozenset({"string", "number", "boolean", "object", "array", "null"})
_EMPTY: MemberSet = frozenset()


def index_groups(saved_groups: Mapping[str, Iterable[object]] | None) -> dict[str, MemberSet]:
    """Prepare saved groups (id -> member list) for ``$inGroup`` tests."""
    if not saved_groups:
        return {}
    return {name: member_set(values) for name, values in saved_groups.items()}


def eval_condition(
    condition: Mapping[str, Any] | None,
    attributes: Mapping[str, Any],
    saved_groups: Mapping[str, Iterable[object]] | None = None,
) -> bool:
    """Whether ``attributes`` satisfy ``condition`` (an empty or null condition always does)."""
    if condition is None:
        return True
    return compile_condition(condition)(attributes, index_groups(saved_groups))


def compile_condition(condition: object) -> Matcher:
    """Compile a condition into a matcher called as ``matcher(attributes, groups)``,
    where ``groups`` comes from :func:`index_groups`."""
    return _compile_object(condition)


# --- JavaScript value semantics ------------------------------------------------

_BOOL_TAG = "\x00bool"
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Infinity)")
_RADIX = re.compile(r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+")
_VERSION_STRIP = re.compile(r"^v|\+.*$")
_VERSION_SPLIT = re.compile(r"[-.]")


def _member_key(value: object) -> object:
    if value is True or value is False:
        return (_BOOL_TAG, value)
    return value


def member_set(values: Iterable[object], insensitive: bool = False) -> MemberSet:
    """Members compared as JavaScript's ``includes`` does (objects never match)."""
    keys: set[object] = set()
    for value in values:
        if isinstance(value, (list, dict, Mapping)):
            continue
        if insensitive and isinstance(value, str):
            value = value.lower()
        try:
            keys.add(_member_key(value))
        except TypeError:
            continue
    return frozenset(keys)


def is_in(value: Any, members: MemberSet, insensitive: bool = False) -> bool:
    """Whether a value, or any element of an array value, is a member."""
    if type(value) is list:
        return any(is_in(item, members, insensitive) for item in value if not isinstance(item, (list, Mapping)))
    if isinstance(value, Mapping):
        return False
    if insensitive and isinstance(value, str):
        value = value.lower()
    try:
        return _member_key(value) in members
    except TypeError:
        return False


def js_type(value: object) -> str:
    """The type name ``$type`` compares against."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "unknown"


def js_truthy(value: object) -> bool:
    """JavaScript truthiness: empty containers are true, 0, "" and null are not."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)):
        return value == value and value != 0  # NaN is falsy
    if isinstance(value, str):
        return value != ""
    return True


def js_string(value: object) -> str:
    """``String(value)`` in JavaScript, for the JSON types."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return js_number_to_string(value)
    if isinstance(value, (list, tuple)):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def js_to_number(value: object) -> float:
    """``Number(value)`` in JavaScript; NaN when it is not a number."""
    if isinstance(value, (int, float)):
        return float(value)
    if value is None:
        return 0.0
    if isinstance(value, (list, tuple)):
        return js_to_number(js_string(value))
    if not isinstance(value, str):
        return math.nan
    text = value.strip()
    if text == "":
        return 0.0
    if _NUMBER.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    if _RADIX.fullmatch(text):
        return float(int(text, 0))
    return math.nan


def js_relate(a: object, b: object) -> int | None:
    """-1, 0 or 1 as JavaScript's ``<``/``>`` order ``a`` and ``b``; None when unordered."""
    if not isinstance(a, str) or isinstance(a, bool):
        a = js_string(a) if isinstance(a, (list, tuple, Mapping)) else a
    if not isinstance(b, str):
        b = js_string(b) if isinstance(b, (list, tuple, Mapping)) else b
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    x, y = js_to_number(a), js_to_number(b)
    if x != x or y != y:
        return None
    return (x > y) - (x < y)


def strict_equal(a: object, b: object) -> bool:
    """JavaScript ``===`` for two values parsed from JSON (objects never equal)."""
    kind = js_type(a)
    if kind != js_type(b) or kind in ("array", "object"):
        return False
    return bool(a == b)


def deep_equal(a: object, b: object) -> bool:
    """Equality of the JSON texts, as JavaScript compares literal objects and arrays."""
    kind = js_type(a)
    if kind != js_type(b):
        return False
    if kind == "array":
        assert isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if kind == "object":
        assert isinstance(a, Mapping) and isinstance(b, Mapping)
        return list(a) == list(b) and all(deep_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def padded_version(value: object) -> str:
    """A version as a string whose plain ordering is semantic-version ordering:
    build metadata and a leading "v" dropped, numeric parts left-padded, and a
    "~" appended to releases so they sort after their pre-releases."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = js_number_to_string(value)
    if not value or not isinstance(value, str):
        value = "0"
    parts = _VERSION_SPLIT.split(_VERSION_STRIP.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5) if p.isdigit() and p.isascii() else p for p in parts)


# --- compilation -----------------------------------------------------------


def _always(_value: Any, _groups: GroupIndex) -> bool:
    return True


def _never(_value: Any, _groups: GroupIndex) -> bool:
    return False


def _all_of(preds: list[_ValuePred]) -> _ValuePred:
    if not preds:
        return _always
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds

        def both(value: Any, groups: GroupIndex) -> bool:
            return first(value, groups) and second(value, groups)

        return both
    chain = tuple(preds)

    def every(value: Any, groups: GroupIndex) -> bool:
        return all(pred(value, groups) for pred in chain)

    return every


def _negate(pred: _ValuePred) -> _ValuePred:
    def negated(value: Any, groups: GroupIndex) -> bool:
        return not pred(value, groups)

    return negated


def _compile_object(condition: object) -> Matcher:
    if not isinstance(condition, Mapping):
        return _never
    preds: list[_ValuePred] = []
    for key, value in condition.items():
        if key == "$or":
            preds.append(_compile_or(value))
        elif key == "$nor":
            preds.append(_negate(_compile_or(value)))
        elif key == "$and":
            preds.append(_compile_and(value))
        elif key == "$not":
            preds.append(_negate(_compile_object(value)))
        else:
            preds.append(_compile_path(str(key), _compile_value(value)))
    return _all_of(preds)


def _compile_or(conditions: object) -> Matcher:
    if not isinstance(conditions, list):
        return _never
    if not conditions:
        return _always
    branches = tuple(_compile_object(c) for c in conditions)

    def any_of(obj: Any, groups: GroupIndex) -> bool:
        return any(branch(obj, groups) for branch in branches)

    return any_of


def _compile_and(conditions: object) -> Matcher:
    if not isinstance(conditions, list):
        return _never
    return _all_of([_compile_object(c) for c in conditions])


def _walk(obj: Any, parts: tuple[str, ...]) -> Any:
    current = obj
    for part in parts:
        if isinstance(current, Mapping):
            if part not in current:
                return None
            current = current[part]
        elif isinstance(current, list):
            if part == "length":
                current = len(current)
            elif part.isdigit() and part.isascii() and (part == "0" or part[0] != "0") and int(part) < len(current):
                current = current[int(part)]
            else:
                return None
        else:
            return None
    return current


def _compile_path(path: str, pred: _ValuePred) -> Matcher:
    parts = tuple(path.split("."))
    if len(parts) == 1:

        def top_level(obj: Any, groups: GroupIndex) -> bool:
            if type(obj) is dict:
                return pred(obj.get(path), groups)
            return pred(obj.get(path) if isinstance(obj, Mapping) else None, groups)

        return top_level

    def nested(obj: Any, groups: GroupIndex) -> bool:
        return pred(_walk(obj, parts), groups)

    return nested


def _is_operator_object(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(str(k).startswith("$") for k in value)


def _compile_value(expected: Any, insensitive: bool = False) -> _ValuePred:
    """A plain value (compared as JavaScript would) or an operator object."""
    if isinstance(expected, str):
        return _string_equals(expected, insensitive)
    if isinstance(expected, bool):

        def bool_equals(value: Any, _groups: GroupIndex) -> bool:
            return value is not None and js_truthy(value) is expected

        return bool_equals
    if isinstance(expected, (int, float)):

        def number_equals(value: Any, _groups: GroupIndex) -> bool:
            if type(value) is int or type(value) is float:
                return bool(value == expected)
            return js_to_number(value) == expected

        return number_equals
    if expected is None:

        def is_null(value: Any, _groups: GroupIndex) -> bool:
            return value is None

        return is_null
    if _is_operator_object(expected):
        return _all_of([_compile_operator(str(op), operand) for op, operand in expected.items()])
    if isinstance(expected, (list, Mapping)):

        def literal_equals(value: Any, _groups: GroupIndex) -> bool:
            return deep_equal(value, expected)

        return literal_equals
    return _never


def _string_equals(expected: str, insensitive: bool) -> _ValuePred:
    if insensitive:
        folded = expected.lower()

        def equals_folded(value: Any, _groups: GroupIndex) -> bool:
            text = value if type(value) is str else js_string(value)
            return text.lower() == folded

        return equals_folded

    def equals(value: Any, _groups: GroupIndex) -> bool:
        if type(value) is str:
            return value == expected
        return js_string(value) == expected

    return equals


def _compile_operator(op: str, operand: Any) -> _ValuePred:
    builder = _OPERATORS.get(op)
    if builder is None:
        return _never
    return builder(operand)


def _op_eq(operand: Any) -> _ValuePred:
    def eq(value: Any, _groups: GroupIndex) -> bool:
        return strict_equal(value, operand)

    return eq


def _op_ne(operand: Any) -> _ValuePred:
    def ne(value: Any, _groups: GroupIndex) -> bool:
        return not strict_equal(value, operand)

    return ne


def _relational(test: Callable[[int], bool]) -> Callable[[Any], _ValuePred]:
    def build(operand: Any) -> _ValuePred:
        def relate(value: Any, _groups: GroupIndex) -> bool:
            order = js_relate(value, operand)
            return order is not None and test(order)

        return relate

    return build


def _version(test: Callable[[str, str], bool]) -> Callable[[Any], _ValuePred]:
    def build(operand: Any) -> _ValuePred:
        target = padded_version(operand)

        def compare(value: Any, _groups: GroupIndex) -> bool:
            return test(padded_version(value), target)

        return compare

    return build


def _op_exists(operand: Any) -> _ValuePred:
    wanted = js_truthy(operand)

    def exists(value: Any, _groups: GroupIndex) -> bool:
        return (value is not None) is wanted

    return exists


def _op_type(operand: Any) -> _ValuePred:
    def has_type(value: Any, _groups: GroupIndex) -> bool:
        return js_type(value) == operand  # type: ignore[no-any-return]

    return has_type


def _regex(flags: int) -> Callable[[Any], _ValuePred]:
    def build(operand: Any) -> _ValuePred:
        if not isinstance(operand, str):
            return _never
        try:
            pattern = re.compile(operand, flags)
        except (re.error, OverflowError, RecursionError):
            return _never
        search = pattern.search

        def matches(value: Any, _groups: GroupIndex) -> bool:
            if type(value) is str:
                return search(value) is not None
            if value is None:
                return False
            return search(js_string(value)) is not None

        return matches

    return build


def _membership(insensitive: bool, negate: bool) -> Callable[[Any], _ValuePred]:
    def build(operand: Any) -> _ValuePred:
        if not isinstance(operand, list):
            return _never
        members = member_set(operand, insensitive)
        if not insensitive and all(type(m) is str for m in operand):
            # Common case: a list of strings against a string attribute.
            def in_strings(value: Any, _groups: GroupIndex) -> bool:
                if type(value) is str:
                    return (value in members) is not negate
                return is_in(value, members, False) is not negate

            return in_strings

        def contains(value: Any, _groups: GroupIndex) -> bool:
            return is_in(value, members, insensitive) is not negate

        return contains

    return build


def _group(negate: bool) -> Callable[[Any], _ValuePred]:
    def build(operand: Any) -> _ValuePred:
        if not isinstance(operand, str):
            return _always if negate else _never
        name = operand

        def in_group(value: Any, groups: GroupIndex) -> bool:
            return is_in(value, groups.get(name, _EMPTY), False) is not negate

        return in_group

    return build


def _op_not(operand: Any) -> _ValuePred:
    return _negate(_compile_value(operand))


def _op_size(operand: Any) -> _ValuePred:
    inner = _compile_value(operand)

    def size(value: Any, groups: GroupIndex) -> bool:
        return type(value) is list and inner(len(value), groups)

    return size


def _op_elem_match(operand: Any) -> _ValuePred:
    if not isinstance(operand, Mapping):
        return _never
    check = _compile_value(operand) if _is_operator_object(operand) else _compile_object(operand)

    def elem_match(value: Any, groups: GroupIndex) -> bool:
        if type(value) is not list:
            return False
        return any(js_truthy(item) and check(item, groups) for item in value)

    return elem_match


def _all(insensitive: bool) -> Callable[[Any], _ValuePred]:
    def build(operand: Any) -> _ValuePred:
        if not isinstance(operand, list):
            return _never
        wanted = tuple(_compile_value(item, insensitive) for item in operand)

        def has_all(value: Any, groups: GroupIndex) -> bool:
            if type(value) is not list:
                return False
            return all(any(pred(item, groups) for item in value) for pred in wanted)

        return has_all

    return build


_OPERATORS: dict[str, Callable[[Any], _ValuePred]] = {
    "$eq": _op_eq,
    "$ne": _op_ne,
    "$lt": _relational(lambda o: o < 0),
    "$lte": _relational(lambda o: o <= 0),
    "$gt": _relational(lambda o: o > 0),
    "$gte": _relational(lambda o: o >= 0),
    "$veq": _version(lambda a, b: a == b),
    "$vne": _version(lambda a, b: a != b),
    "$vlt": _version(lambda a, b: a < b),
    "$vlte": _version(lambda a, b: a <= b),
    "$vgt": _version(lambda a, b: a > b),
    "$vgte": _version(lambda a, b: a >= b),
    "$exists": _op_exists,
    "$type": _op_type,
    "$regex": _regex(0),
    "$regexi": _regex(re.IGNORECASE),
    "$in": _membership(False, False),
    "$nin": _membership(False, True),
    "$ini": _membership(True, False),
    "$nini": _membership(True, True),
    "$inGroup": _group(False),
    "$notInGroup": _group(True),
    "$not": _op_not,
    "$size": _op_size,
    "$elemMatch": _op_elem_match,
    "$all": _all(False),
    "$alli": _all(True),
}


# --- validation --------------------------------------------------------------


def validate_condition(condition: object, saved_groups: Iterable[str] | None = None) -> list[str]:
    """Human-readable problems in a condition, each prefixed with where it is.

    ``saved_groups``, when given, are the known group ids: ``$inGroup`` naming
    another id is reported too. An empty list means the condition is valid.
    """
    known_groups = None if saved_groups is None else frozenset(saved_groups)
    errors: list[str] = []
    if not isinstance(condition, Mapping):
        errors.append(f"condition: must be a JSON object, got {_describe(condition)}.")
        return errors
    _check_object(condition, "condition", errors, known_groups)
    return errors


def _describe(value: object) -> str:
    kind = js_type(value)
    return {"object": "an object", "array": "a list", "null": "null"}.get(kind, f"a {kind}")


def _check_object(
    condition: Mapping[Any, Any], path: str, errors: list[str], groups: frozenset[str] | None
) -> None:
    for key, value in condition.items():
        here = f"{path}.{key}"
        if not isinstance(key, str) or key == "":
            errors.append(f"{path}: attribute names must be non-empty strings.")
        elif key in ("$or", "$nor", "$and"):
            if not isinstance(value, list):
                errors.append(f"{here}: expected a list of conditions, got {_describe(value)}.")
                continue
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _check_object(item, f"{here}[{index}]", errors, groups)
                else:
                    errors.append(f"{here}[{index}]: expected a condition object, got {_describe(item)}.")
        elif key == "$not":
            if isinstance(value, Mapping):
                _check_object(value, here, errors, groups)
            else:
                errors.append(f"{here}: expected a condition object, got {_describe(value)}.")
        elif key in VALUE_OPERATORS:
            example = f'{{"plan": {{"{key}": …}}}}'
            errors.append(f"{here}: operator '{key}' must be applied to an attribute, as in {example}.")
        else:
            _check_value(value, here, errors, groups)


def _check_value(value: Any, path: str, errors: list[str], groups: frozenset[str] | None) -> None:
    if not isinstance(value, Mapping):
        return
    keys = [str(k) for k in value]
    operators = [k for k in keys if k.startswith("$")]
    if not operators:
        return
    if len(operators) != len(keys):
        plain = ", ".join(k for k in keys if not k.startswith("$"))
        errors.append(f"{path}: mixes operators ({', '.join(operators)}) with plain keys ({plain}).")
        return
    for op, operand in value.items():
        _check_operator(str(op), operand, f"{path}.{op}", errors, groups)


def _check_operator(op: str, operand: Any, path: str, errors: list[str], groups: frozenset[str] | None) -> None:
    kind = js_type(operand)
    if op not in VALUE_OPERATORS:
        hint = " (use $or, $and, $nor or $not at the condition level)" if op in LOGICAL_OPERATORS else ""
        errors.append(f"{path}: unknown operator '{op}'{hint}.")
    elif op in ("$lt", "$lte", "$gt", "$gte") and kind not in ("number", "string"):
        errors.append(f"{path}: expected a number or a string, got {_describe(operand)}.")
    elif op.startswith("$v") and kind not in ("string", "number"):
        errors.append(f"{path}: expected a version string such as \"1.2.3\", got {_describe(operand)}.")
    elif op in ("$in", "$nin", "$ini", "$nini", "$all", "$alli") and kind != "array":
        errors.append(f"{path}: expected a list, got {_describe(operand)}.")
    elif op in ("$regex", "$regexi"):
        _check_regex(operand, path, errors)
    elif op == "$exists" and kind != "boolean":
        errors.append(f"{path}: expected true or false, got {_describe(operand)}.")
    elif op == "$type" and operand not in _TYPES:
        errors.append(f"{path}: expected one of {', '.join(sorted(_TYPES))}, got {operand!r}.")
    elif op in ("$inGroup", "$notInGroup"):
        if kind != "string":
            errors.append(f"{path}: expected a saved group id, got {_describe(operand)}.")
        elif groups is not None and operand not in groups:
            errors.append(f"{path}: unknown saved group '{operand}'.")
    elif op == "$size":
        if kind == "object":
            _check_value(operand, path, errors, groups)
        elif kind != "number":
            errors.append(f"{path}: expected a number or an operator object, got {_describe(operand)}.")
    elif op == "$not":
        if kind == "object" and _is_operator_object(operand):
            _check_value(operand, path, errors, groups)
        elif kind == "object":
            errors.append(f"{path}: expected an operator object such as {{\"$regex\": \"^a\"}}.")
    elif op == "$elemMatch":
        if kind != "object":
            errors.append(f"{path}: expected an object, got {_describe(operand)}.")
        elif _is_operator_object(operand):
            _check_value(operand, path, errors, groups)
        else:
            _check_object(operand, path, errors, groups)


def _check_regex(operand: Any, path: str, errors: list[str]) -> None:
    if not isinstance(operand, str):
        errors.append(f"{path}: expected a regular expression string, got {_describe(operand)}.")
        return
    try:
        re.compile(operand)
    except (re.error, OverflowError, RecursionError) as exc:
        errors.append(f"{path}: invalid regular expression ({exc}).")
