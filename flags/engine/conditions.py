"""Targeting conditions: MongoDB-style operators over context attributes.

The semantics follow GrowthBook's JavaScript SDK, the reference the shared
conformance cases are written against: a missing attribute reads as null,
plain values compare the way JavaScript coerces them (``{"age": 30}`` matches
``"30"``), relational operators use JavaScript's ordering (null counts as 0,
numeric strings as numbers), array attributes intersect with ``$in``, and
version operators compare padded version strings. Nothing here raises on bad
input: a condition that cannot be evaluated simply does not match. The one
exception is size: ``compile_condition`` raises :class:`ConditionTooComplex`
for a condition nested deeper than ``limits.COMPILE_MAX_DEPTH``, so that the
caller can set that one rule aside instead of exhausting the stack.

``$regex`` runs on RE2, whose matching time is linear in the length of the
text whatever the pattern: a pattern cannot make a request slow. RE2 takes
JavaScript's syntax for ordinary patterns (``\\uXXXX`` and ``\\cX`` escapes are
translated); it has no backreferences or lookarounds, and ``pattern_problem``
says so to people writing such a pattern.

``compile_condition`` resolves the operator dispatch, regexes and lookup sets
once; ``eval_condition`` compiles and evaluates in one go; ``validate_condition``
lists problems for people editing conditions.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import re2

from flags.engine.limits import COMPILE_MAX_DEPTH, depth_exceeds
from traffic.assignment.bucketing import js_number_to_string

__all__ = [
    "LOGICAL_OPERATORS",
    "VALUE_OPERATORS",
    "ConditionTooComplex",
    "GroupIndex",
    "Matcher",
    "compile_condition",
    "eval_condition",
    "index_groups",
    "pattern_problem",
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


class ConditionTooComplex(ValueError):
    """A condition nested deeper than compilation takes (``limits.COMPILE_MAX_DEPTH``)."""


def compile_condition(condition: object) -> Matcher:
    """Compile a condition into a matcher called as ``matcher(attributes, groups)``,
    where ``groups`` comes from :func:`index_groups`.

    Raises :class:`ConditionTooComplex` for a condition nested deeper than
    ``limits.COMPILE_MAX_DEPTH`` levels; validation keeps stored conditions far below that.
    """
    if depth_exceeds(condition, COMPILE_MAX_DEPTH):
        raise ConditionTooComplex(f"The condition is nested deeper than {COMPILE_MAX_DEPTH} levels.")
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
    # Objects and arrays compare through their string form.
    a = js_string(a) if isinstance(a, (list, tuple, Mapping)) else a
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
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
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
# A condition compiles to nested closures; each value predicate takes the
# attribute's value and the saved-group index.


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
        return lambda value, groups: first(value, groups) and second(value, groups)
    chain = tuple(preds)
    return lambda value, groups: all(pred(value, groups) for pred in chain)


def _negate(pred: _ValuePred) -> _ValuePred:
    return lambda value, groups: not pred(value, groups)


def _compile_object(condition: object) -> Matcher:
    if not isinstance(condition, Mapping):
        return _never
    preds: list[_ValuePred] = []
    for key, value in condition.items():
        if key in ("$or", "$nor"):
            # A malformed list never matches, whichever way it is negated.
            either = _compile_or(value)
            preds.append(either if key == "$or" or not isinstance(value, list) else _negate(either))
        elif key == "$and":
            preds.append(_all_of([_compile_object(c) for c in value]) if isinstance(value, list) else _never)
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
    return lambda obj, groups: any(branch(obj, groups) for branch in branches)


def _walk(obj: Any, parts: tuple[str, ...]) -> Any:
    current = obj
    for part in parts:
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part == "length":
            current = len(current)
        elif isinstance(current, list) and part.isascii() and part.isdigit() and str(int(part)) == part:
            current = current[int(part)] if int(part) < len(current) else None
        else:
            return None
    return current


def _compile_path(path: str, pred: _ValuePred) -> Matcher:
    parts = tuple(path.split("."))
    if len(parts) > 1:
        return lambda obj, groups: pred(_walk(obj, parts), groups)

    def top_level(obj: Any, groups: GroupIndex) -> bool:
        if type(obj) is dict:
            return pred(obj.get(path), groups)
        return pred(obj.get(path) if isinstance(obj, Mapping) else None, groups)

    return top_level


def _is_operator_object(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(str(k).startswith("$") for k in value)


def _compile_value(expected: Any, insensitive: bool = False) -> _ValuePred:
    """A plain value (compared as JavaScript coerces it) or an operator object."""
    if isinstance(expected, str):
        if insensitive:
            folded = expected.lower()
            return lambda value, _g: (value if type(value) is str else js_string(value)).lower() == folded
        return lambda value, _g: value == expected if type(value) is str else js_string(value) == expected
    if isinstance(expected, bool):
        return lambda value, _g: value is not None and js_truthy(value) is expected
    if isinstance(expected, (int, float)):
        return lambda value, _g: js_to_number(value) == expected
    if expected is None:
        return lambda value, _g: value is None
    if _is_operator_object(expected):
        return _all_of([_compile_operator(str(op), operand) for op, operand in expected.items()])
    if isinstance(expected, (list, Mapping)):
        return lambda value, _g: deep_equal(value, expected)
    return _never


def _compile_operator(op: str, operand: Any) -> _ValuePred:
    if op in _RELATIONS:
        test = _RELATIONS[op]
        if type(operand) is int or type(operand) is float:
            return _numeric_relation(test, operand)
        return lambda value, _g: (order := js_relate(value, operand)) is not None and test(order, 0)
    if op in _VERSIONS:
        check, target = _VERSIONS[op], padded_version(operand)
        return lambda value, _g: check(padded_version(value), target)
    if op in ("$eq", "$ne"):
        negate = op == "$ne"
        return lambda value, _g: strict_equal(value, operand) is not negate
    if op in ("$in", "$nin", "$ini", "$nini"):
        return _membership(operand, insensitive=op.endswith("ini"), negate=op.startswith("$n"))
    if op in ("$inGroup", "$notInGroup"):
        negate = op == "$notInGroup"
        if not isinstance(operand, str):
            return _always if negate else _never

        def in_group(value: Any, groups: GroupIndex) -> bool:
            members = groups.get(operand, _EMPTY)
            # Strings are their own member keys: the common case needs no call.
            return (value in members if type(value) is str else is_in(value, members)) is not negate

        return in_group
    if op in ("$regex", "$regexi"):
        return _regex(operand, insensitive=op == "$regexi")
    if op in ("$all", "$alli"):
        return _all(operand, insensitive=op == "$alli")
    if op == "$exists":
        wanted = js_truthy(operand)
        return lambda value, _g: (value is not None) is wanted
    if op == "$type":
        return lambda value, _g: js_type(value) == operand
    if op == "$not":
        return _negate(_compile_value(operand))
    if op == "$size":
        inner = _compile_value(operand)
        return lambda value, groups: type(value) is list and inner(len(value), groups)
    if op == "$elemMatch":
        return _elem_match(operand)
    return _never


_RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge,
}  # fmt: skip
_VERSIONS: dict[str, Callable[[str, str], bool]] = {
    "$veq": operator.eq, "$vne": operator.ne, "$vlt": operator.lt,
    "$vlte": operator.le, "$vgt": operator.gt, "$vgte": operator.ge,
}  # fmt: skip


def _numeric_relation(test: Callable[[int, int], bool], operand: float) -> _ValuePred:
    """``$lt``/``$lte``/``$gt``/``$gte`` against a number: a number compares directly (as
    ``js_relate`` would), anything else goes through ``js_relate``."""
    try:
        target = float(operand)
    except OverflowError:
        target = math.nan
    if target != target:
        return lambda value, _g: (order := js_relate(value, operand)) is not None and test(order, 0)

    def numeric(value: Any, _g: GroupIndex) -> bool:
        if type(value) is int or type(value) is float:
            x = float(value)
            return x == x and test((x > target) - (x < target), 0)
        order = js_relate(value, operand)
        return order is not None and test(order, 0)

    return numeric


def _membership(operand: Any, *, insensitive: bool, negate: bool) -> _ValuePred:
    if not isinstance(operand, list):
        return _never
    members = member_set(operand, insensitive)
    if not insensitive:
        # Strings are their own member keys: the common case needs no call.
        return lambda value, _g: (value in members if type(value) is str else is_in(value, members)) is not negate
    return lambda value, _g: is_in(value, members, True) is not negate


# --- regular expressions ---------------------------------------------------------

_JS_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|c([A-Za-z])|.)", re.DOTALL)
_BACKREFERENCE = re.compile(r"\\(?:[1-9]|k<)")
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_LINEAR = "patterns are matched by RE2, in time linear in the text"


def _js_escape(match: re.Match[str]) -> str:
    code, control = match.group(1), match.group(2)
    if code is not None:
        return f"\\x{{{code}}}"
    if control is not None:
        return f"\\x{{{ord(control) % 32:02x}}}"
    return match.group(0)


class _PatternError(ValueError):
    pass


@functools.lru_cache(maxsize=1024)
def _pattern(pattern: str, insensitive: bool) -> Any:
    """The compiled RE2 program of a JavaScript pattern; _PatternError when RE2 refuses it."""
    options = re2.Options()
    options.case_sensitive = not insensitive
    options.never_capture = True
    options.log_errors = False
    try:
        return re2.compile(_JS_ESCAPE.sub(_js_escape, pattern), options)
    except UnicodeError as exc:
        raise _PatternError("not valid Unicode") from exc
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "not a pattern"
        raise _PatternError(reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)) from exc


def pattern_problem(pattern: str, *, insensitive: bool = False) -> str | None:
    """Why a ``$regex`` pattern cannot be used, for people (None when it can)."""
    try:
        _pattern(pattern, insensitive)
    except _PatternError as exc:
        if _BACKREFERENCE.search(pattern):
            return f"backreferences such as \\1 are not supported ({_LINEAR})"
        if _LOOKAROUND.search(pattern):
            return f"lookaheads and lookbehinds such as (?= are not supported ({_LINEAR})"
        return f"invalid regular expression ({exc})"
    return None


def _regex(operand: Any, *, insensitive: bool) -> _ValuePred:
    if not isinstance(operand, str):
        return _never
    try:
        search = _pattern(operand, insensitive).search
    except _PatternError:
        return _never
    # A missing attribute does not match (JavaScript would test the text "null"). The text is
    # given as bytes, so a lone surrogate cannot fail the encoding.
    return lambda value, _g: value is not None and search(
        (value if type(value) is str else js_string(value)).encode("utf-8", "surrogatepass")
    ) is not None


def _all(operand: Any, *, insensitive: bool) -> _ValuePred:
    if not isinstance(operand, list):
        return _never
    wanted = tuple(_compile_value(item, insensitive) for item in operand)
    return lambda value, groups: type(value) is list and all(
        any(pred(item, groups) for item in value) for pred in wanted
    )


def _elem_match(operand: Any) -> _ValuePred:
    if not isinstance(operand, Mapping):
        return _never
    check = _compile_value(operand) if _is_operator_object(operand) else _compile_object(operand)
    # JavaScript skips falsy elements.
    return lambda value, groups: type(value) is list and any(js_truthy(i) and check(i, groups) for i in value)


# --- validation --------------------------------------------------------------

# Operand type each operator expects, as named by ``$type``, and how to say it.
_OPERANDS: dict[str, tuple[tuple[str, ...], str]] = {
    **dict.fromkeys(_RELATIONS, (("number", "string"), "a number or a string")),
    **dict.fromkeys(_VERSIONS, (("string", "number"), 'a version string such as "1.2.3"')),
    **dict.fromkeys(("$in", "$nin", "$ini", "$nini", "$all", "$alli"), (("array",), "a list")),
    **dict.fromkeys(("$regex", "$regexi"), (("string",), "a regular expression string")),
    **dict.fromkeys(("$inGroup", "$notInGroup"), (("string",), "a saved group id")),
    "$exists": (("boolean",), "true or false"),
    "$size": (("number", "object"), "a number or an operator object"),
    "$elemMatch": (("object",), "an object"),
}  # fmt: skip


def validate_condition(condition: object, saved_groups: Iterable[str] | None = None) -> list[str]:
    """Human-readable problems in a condition, each prefixed with where it is.

    ``saved_groups``, when given, are the known group ids: ``$inGroup`` naming
    another id is reported too. An empty list means the condition is valid.
    """
    errors: list[str] = []
    if not isinstance(condition, Mapping):
        return [f"condition: must be a JSON object, got {_describe(condition)}."]
    _check_object(condition, "condition", errors, None if saved_groups is None else frozenset(saved_groups))
    return errors


def _describe(value: object) -> str:
    kind = js_type(value)
    return {"object": "an object", "array": "a list", "null": "null"}.get(kind, f"a {kind}")


def _check_object(condition: Mapping[Any, Any], path: str, errors: list[str], groups: frozenset[str] | None) -> None:
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
    if operators and len(operators) != len(keys):
        plain = ", ".join(k for k in keys if not k.startswith("$"))
        errors.append(f"{path}: mixes operators ({', '.join(operators)}) with plain keys ({plain}).")
    elif operators:
        for op, operand in value.items():
            _check_operator(str(op), operand, f"{path}.{op}", errors, groups)


def _check_operator(op: str, operand: Any, path: str, errors: list[str], groups: frozenset[str] | None) -> None:
    kind = js_type(operand)
    if op not in VALUE_OPERATORS:
        hint = " (use $or, $and, $nor or $not at the condition level)" if op in LOGICAL_OPERATORS else ""
        errors.append(f"{path}: unknown operator '{op}'{hint}.")
        return
    expected = _OPERANDS.get(op)
    if expected is not None and kind not in expected[0]:
        errors.append(f"{path}: expected {expected[1]}, got {_describe(operand)}.")
    elif op == "$type" and operand not in _TYPES:
        errors.append(f"{path}: expected one of {', '.join(sorted(_TYPES))}, got {operand!r}.")
    elif op in ("$regex", "$regexi"):
        problem = pattern_problem(operand, insensitive=op == "$regexi")
        if problem is not None:
            errors.append(f"{path}: {problem}.")
    elif op in ("$inGroup", "$notInGroup") and groups is not None and operand not in groups:
        errors.append(f"{path}: unknown saved group '{operand}'.")
    elif op in ("$size", "$not", "$elemMatch") and kind == "object":
        if _is_operator_object(operand):
            _check_value(operand, path, errors, groups)
        elif op == "$elemMatch":
            _check_object(operand, path, errors, groups)
        elif op == "$not":
            errors.append(f"{path}: expected an operator object such as {{\"$regex\": \"^a\"}}.")
