"""The condition builder's model: a targeting condition as rows people pick from lists.

A ``Builder`` is a list of clauses ("country is one of DE, FR", "app_version is version 2.4.0
or later") combined with ``all`` (every clause holds) or ``any`` (at least one does). Each
clause names an attribute, an operator and its values. ``condition_from_builder`` writes the
condition the engine evaluates, ``builder_from_condition`` reads one back; a condition the rows
cannot show (nested groups of ``$or`` inside ``$and``, ``$elemMatch`` on objects, ...) reads as
None, and stays editable as JSON only.

Round trips: a builder written out and read back is the same builder; a condition the builder
wrote reads back and writes out to the same condition. A condition written by hand that the
builder can show comes back equivalent (``{"plan": {"$eq": "pro"}}`` is written
``{"plan": "pro"}``).

The shapes written are GrowthBook's: ``all`` is one object with a key per attribute (operators
of adjacent clauses on one attribute share its object), or ``$and`` of one object per clause
when an attribute comes back later or two clauses would need the same operator key; ``any`` is
``$or`` of one object per clause. "is" writes the plain value (``{"plan": "pro"}``), "contains"
on a list writes ``{"$elemMatch": {"$eq": value}}``, "does not match" ``{"$not": {"$regex": p}}``,
"is set" / "is not set" ``{"$exists": true / false}``.

The operators each attribute type offers are ``OPERATORS_BY_TYPE`` (an attribute nobody defined
offers them all); ``builder_catalog`` hands them, with the attribute definitions, to the
builder's script (``flags/static/flags/condition-builder.js``, which reads and writes the same
shapes). ``condition_warnings`` lists what deserves a second look but is no error: attributes
no definition names, operators not meant for an attribute's type, values outside its allowed
values or of another type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from flags.engine.attributes import AttributeDefinition, attributes_in, is_version
from flags.engine.describe import describe_value

__all__ = [
    "LABELS_BY_TYPE",
    "OPERATORS",
    "OPERATORS_BY_TYPE",
    "Builder",
    "Clause",
    "Match",
    "Operator",
    "builder_catalog",
    "builder_from_condition",
    "builder_from_document",
    "builder_to_document",
    "condition_from_builder",
    "condition_warnings",
    "operator_label",
]

Match = Literal["all", "any"]
Arity = Literal["none", "one", "many"]


@dataclass(frozen=True, slots=True)
class Operator:
    """One comparison a row can make: its id, its words, how many values it takes."""

    id: str
    label: str
    arity: Arity


OPERATORS: Final[dict[str, Operator]] = {op.id: op for op in (
    Operator("$eq", "is", "one"),
    Operator("$ne", "is not", "one"),
    Operator("$in", "is one of", "many"),
    Operator("$nin", "is none of", "many"),
    Operator("$gt", "is greater than", "one"),
    Operator("$gte", "is at least", "one"),
    Operator("$lt", "is less than", "one"),
    Operator("$lte", "is at most", "one"),
    Operator("$regex", "matches the pattern", "one"),
    Operator("$notRegex", "does not match the pattern", "one"),
    Operator("$veq", "is version", "one"),
    Operator("$vne", "is not version", "one"),
    Operator("$vgt", "is a version after", "one"),
    Operator("$vgte", "is this version or later", "one"),
    Operator("$vlt", "is a version before", "one"),
    Operator("$vlte", "is this version or earlier", "one"),
    Operator("$contains", "contains", "one"),
    Operator("$all", "contains all of", "many"),
    Operator("$size", "has this many items", "one"),
    Operator("$exists", "is set", "none"),
    Operator("$notExists", "is not set", "none"),
)}

_SET = ("$exists", "$notExists")
OPERATORS_BY_TYPE: Final[dict[str, tuple[str, ...]]] = {
    "string": ("$eq", "$ne", "$in", "$nin", "$regex", "$notRegex", *_SET),
    "number": ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", *_SET),
    "boolean": ("$eq", "$ne", *_SET),
    "semver": ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte", "$in", "$nin", *_SET),
    # $in and $nin intersect a list attribute with the values.
    "list": ("$contains", "$all", "$in", "$nin", "$size", *_SET),
    # An attribute nobody defined: every comparison.
    "unknown": tuple(OPERATORS),
}
# Words that differ by type: on a list, $in and $nin read as "contains any / none of".
LABELS_BY_TYPE: Final[dict[str, dict[str, str]]] = {
    "list": {"$in": "contains any of", "$nin": "contains none of"},
}

# Builder operators written as the condition operator of the same name, with one value or a list.
_PLAIN_ONE = frozenset({"$ne", "$gt", "$gte", "$lt", "$lte", "$regex", "$veq", "$vne", "$vgt", "$vgte", "$vlt",
                        "$vlte", "$size"})
_PLAIN_MANY = frozenset({"$in", "$nin", "$all"})


def operator_label(operator: str, kind: str = "unknown") -> str:
    """The words of an operator on an attribute of type ``kind``."""
    known = OPERATORS.get(operator)
    return LABELS_BY_TYPE.get(kind, {}).get(operator) or (known.label if known else operator)


@dataclass(frozen=True, slots=True)
class Clause:
    attribute: str
    operator: str
    values: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Builder:
    match: Match = "all"
    clauses: tuple[Clause, ...] = ()


# --- builder -> condition ------------------------------------------------------------------------


def _operand(clause: Clause) -> tuple[str, Any]:
    """The condition operator and operand a clause writes (``$eq`` for a plain value)."""
    op, values = clause.operator, clause.values
    first = values[0] if values else None
    if op == "$eq":
        return "$eq", first
    if op in _PLAIN_ONE:
        return op, first
    if op in _PLAIN_MANY:
        return op, list(values)
    if op == "$notRegex":
        return "$not", {"$regex": first}
    if op == "$contains":
        return "$elemMatch", {"$eq": first}
    if op in _SET:
        return "$exists", op == "$exists"
    raise ValueError(f"unknown builder operator {op!r}")


def _expression(clauses: Sequence[Clause]) -> Any:
    """What one attribute must be, for clauses on that attribute with distinct operators."""
    if len(clauses) == 1 and clauses[0].operator == "$eq" and not isinstance(_operand(clauses[0])[1], (dict, list)):
        return _operand(clauses[0])[1]
    return dict(_operand(c) for c in clauses)


def _mergeable(clauses: Sequence[Clause]) -> bool:
    keys = [_operand(c)[0] for c in clauses]
    return len(set(keys)) == len(keys)


def condition_from_builder(builder: Builder) -> dict[str, Any]:
    """The condition the rows say; ``{}`` (everyone) without rows."""
    clauses = builder.clauses
    if not clauses:
        return {}
    if builder.match == "any":
        return {"$or": [{c.attribute: _expression([c])} for c in clauses]}
    groups: list[list[Clause]] = []
    for clause in clauses:
        if groups and groups[-1][0].attribute == clause.attribute:
            groups[-1].append(clause)
        else:
            groups.append([clause])
    attributes = [g[0].attribute for g in groups]
    if len(set(attributes)) == len(attributes) and all(_mergeable(g) for g in groups):
        return {g[0].attribute: _expression(g) for g in groups}
    return {"$and": [{c.attribute: _expression([c])} for c in clauses]}


# --- condition -> builder ------------------------------------------------------------------------


def _scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int, bool))


def _is_operator_object(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(str(k).startswith("$") for k in value)


def _clause(attribute: str, op: str, operand: Any) -> Clause | None:
    """The clause one ``{op: operand}`` of an attribute reads as; None when no row shows it."""
    if op == "$eq" and _scalar(operand):
        return Clause(attribute, "$eq", (operand,))
    if op in _PLAIN_ONE and _scalar(operand):
        return Clause(attribute, op, (operand,))
    if op in ("$in", "$nin", "$all") and isinstance(operand, list) and all(_scalar(v) for v in operand):
        return Clause(attribute, op, tuple(operand))
    if op == "$exists" and isinstance(operand, bool):
        return Clause(attribute, "$exists" if operand else "$notExists")
    if op == "$not" and isinstance(operand, Mapping) and list(operand) == ["$regex"] and _scalar(operand["$regex"]):
        return Clause(attribute, "$notRegex", (operand["$regex"],))
    if op == "$elemMatch" and isinstance(operand, Mapping) and list(operand) == ["$eq"] and _scalar(operand["$eq"]):
        return Clause(attribute, "$contains", (operand["$eq"],))
    return None


def _attribute_clauses(attribute: str, expected: Any) -> list[Clause] | None:
    if attribute.startswith("$") or not attribute:
        return None
    if not _is_operator_object(expected):
        return [Clause(attribute, "$eq", (expected,))] if _scalar(expected) else None
    clauses = [_clause(attribute, str(op), operand) for op, operand in expected.items()]
    return None if any(c is None for c in clauses) else [c for c in clauses if c is not None]


def _object_clauses(condition: Mapping[str, Any]) -> list[Clause] | None:
    """The clauses of an object whose keys are attributes (all must hold)."""
    found: list[Clause] = []
    for key, expected in condition.items():
        clauses = _attribute_clauses(str(key), expected)
        if clauses is None:
            return None
        found.extend(clauses)
    return found


def builder_from_condition(condition: object) -> Builder | None:
    """The rows a condition reads as; None when they cannot show it (it stays JSON)."""
    if condition is None or condition == {}:
        return Builder()
    if not isinstance(condition, Mapping):
        return None
    keys = list(condition)
    if keys in (["$and"], ["$or"]):
        items = condition[keys[0]]
        if not isinstance(items, list) or not items or not all(isinstance(i, Mapping) for i in items):
            return None
        parts = [_object_clauses(item) for item in items]
        if any(p is None for p in parts):
            return None
        clauses = [c for part in parts if part is not None for c in part]
        if keys == ["$or"]:
            if any(part is None or len(part) != 1 for part in parts):
                return None
            return Builder("any", tuple(clauses))
        return Builder("all", tuple(clauses))
    found = _object_clauses(condition)
    return None if found is None else Builder("all", tuple(found))


# --- documents, for the script and the tests -----------------------------------------------------


def builder_to_document(builder: Builder) -> dict[str, Any]:
    return {"match": builder.match,
            "clauses": [{"attribute": c.attribute, "operator": c.operator, "values": list(c.values)}
                        for c in builder.clauses]}


def builder_from_document(document: Mapping[str, Any]) -> Builder:
    match: Match = "any" if document.get("match") == "any" else "all"
    clauses = tuple(
        Clause(str(c["attribute"]), str(c["operator"]), tuple(c.get("values") or ()))
        for c in document.get("clauses") or ()
    )
    return Builder(match, clauses)


def builder_catalog(definitions: Iterable[AttributeDefinition]) -> dict[str, Any]:
    """What the builder's script offers: the defined attributes, the operators with their words
    and how many values each takes, and which operators each type offers."""
    return {
        "attributes": [d.as_document() for d in definitions],
        "operators": {op.id: {"label": op.label, "arity": op.arity} for op in OPERATORS.values()},
        "types": {kind: [[op, operator_label(op, kind)] for op in ops] for kind, ops in OPERATORS_BY_TYPE.items()},
    }


# --- warnings ----------------------------------------------------------------------------------


def _fits(value: Any, kind: str) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "number":
        return number
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "semver":
        return is_version(value)
    return isinstance(value, str) or (kind == "list" and number)


_TYPE_WORDS = {"string": "text", "number": "a number", "boolean": "true or false",
               "semver": 'a version such as "1.2.3"', "list": "a text or a number"}
# Operators whose values are not values of the attribute itself.
_FREE_VALUES = frozenset({"$regex", "$notRegex", "$size"})


def condition_warnings(condition: object, definitions: Iterable[AttributeDefinition]) -> list[str]:
    """What deserves a second look in a condition, one sentence each; never a reason to refuse it."""
    known = {d.name: d for d in definitions}
    warnings = [
        f"{describe_value(name)} is not a defined attribute: check its spelling, or define it so that the builder "
        "knows its type and values. Units whose context lacks it are treated as not having it."
        for name in attributes_in(condition) if name not in known
    ]
    builder = builder_from_condition(condition)
    for clause in builder.clauses if builder is not None else ():
        definition = known.get(clause.attribute)
        if definition is None:
            continue
        label = operator_label(clause.operator, definition.type)
        name = describe_value(clause.attribute)
        if clause.operator not in OPERATORS_BY_TYPE[definition.type]:
            warnings.append(f"{name} is a {definition.type} attribute: '{label}' is not meant for it.")
            continue
        if clause.operator in _FREE_VALUES:
            continue
        allowed = list(definition.allowed_values)
        for value in clause.values:
            shown = describe_value(value)
            if not _fits(value, definition.type):
                warnings.append(f"{name} {label} {shown}: {shown} is not {_TYPE_WORDS[definition.type]}.")
            elif allowed and not any(_same(value, a) for a in allowed):
                warnings.append(f"{name} {label} {shown}: {shown} is not one of the allowed values of {name}.")
    return warnings


def _same(a: Any, b: Any) -> bool:
    # True and 1 are different values here, as in JavaScript.
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
