"""Attribute definitions: the context attributes targeting conditions are written against.

A definition names an attribute the applications send (``country``, ``plan``, ``app_version``),
its type and, optionally, the values it can take, as GrowthBook's attribute schema does. The
definitions guide people (the condition builder offers the attributes, the operators of each
type and the allowed values as choices); they never change what is served, and a condition may
still test an attribute nobody defined (``attributes_unknown`` says which, as a warning).

Types: ``string``, ``number``, ``boolean``, ``semver`` (version strings compared with ``$vgt``
and friends: ``1.2.3``, ``v2.0``, ``1.4.0-beta.2``) and ``list`` (a list of strings or numbers,
tested with ``$all``, ``$in`` and ``$size``). ``check_attribute`` returns every problem of a
definition at once, within the limits below (docs/api.md, Limits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from base.keys import Errors

__all__ = [
    "ATTRIBUTE_ALLOWED_VALUES_MAX",
    "ATTRIBUTE_DESCRIPTION_MAX",
    "ATTRIBUTE_NAME_MAX",
    "ATTRIBUTE_TYPES",
    "ATTRIBUTE_VALUE_MAX_LENGTH",
    "AttributeDefinition",
    "AttributeType",
    "attributes_in",
    "attributes_unknown",
    "check_attribute",
    "definitions_by_name",
    "is_version",
]

AttributeType = Literal["string", "number", "boolean", "semver", "list"]
ATTRIBUTE_TYPES: Final[tuple[AttributeType, ...]] = ("string", "number", "boolean", "semver", "list")

ATTRIBUTE_NAME_MAX = 100
ATTRIBUTE_DESCRIPTION_MAX = 2_000
# Allowed values are choices shown in a list: a few hundred at most (longer lists of ids belong
# in an id-list segment).
ATTRIBUTE_ALLOWED_VALUES_MAX = 500
ATTRIBUTE_VALUE_MAX_LENGTH = 200

# A name as conditions address it: letters, digits, dots (nested attributes), underscores and
# hyphens; not an operator.
_NAME = re.compile(rf"^[A-Za-z0-9_][A-Za-z0-9._-]{{0,{ATTRIBUTE_NAME_MAX - 1}}}$")
_VERSION = re.compile(r"^v?\d+(?:\.\d+)*(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_LOGICAL = frozenset({"$and", "$or", "$nor", "$not"})


@dataclass(frozen=True, slots=True)
class AttributeDefinition:
    name: str
    type: AttributeType
    allowed_values: tuple[Any, ...] = ()
    description: str = ""

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> AttributeDefinition:
        kind = document.get("type")
        return cls(
            name=str(document.get("name", "")),
            type=kind if kind in ATTRIBUTE_TYPES else "string",
            allowed_values=tuple(document.get("allowed_values") or ()),
            description=str(document.get("description") or ""),
        )

    def as_document(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "allowed_values": list(self.allowed_values),
                "description": self.description}


def is_version(value: object) -> bool:
    """A version string as the ``$v…`` operators compare them: ``1.2.3``, ``v2``, ``1.0.0-rc.1``."""
    return isinstance(value, str) and bool(_VERSION.match(value))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _value_problem(value: Any, kind: AttributeType) -> str | None:
    """Why ``value`` cannot be an allowed value of a ``kind`` attribute; None when it can."""
    if kind == "number":
        return None if _is_number(value) else "is not a number"
    if kind == "semver":
        return None if is_version(value) else 'is not a version such as "1.2.3"'
    if kind == "list":
        ok = isinstance(value, str) or _is_number(value)
        return None if ok else "is not a string or a number (the items of a list attribute)"
    return None if isinstance(value, str) else "is not a string"


def check_attribute(
    *, name: object, type: object, allowed_values: object = (), description: object = ""
) -> Errors:
    """Every problem of a definition, field -> messages (empty when it is valid)."""
    errors: Errors = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not isinstance(name, str) or not _NAME.match(name):
        add("name", f"Use 1-{ATTRIBUTE_NAME_MAX} letters, digits, dots, underscores or hyphens, not starting with "
                    "a dot or a hyphen (the attribute's name as the applications send it).")
    if type not in ATTRIBUTE_TYPES:
        add("type", f"Use one of {', '.join(ATTRIBUTE_TYPES)}.")
    if not isinstance(description, str):
        add("description", "Give the description as text.")
    elif len(description) > ATTRIBUTE_DESCRIPTION_MAX:
        add("description", f"At most {ATTRIBUTE_DESCRIPTION_MAX:,} characters (this one has {len(description):,}).")
    if allowed_values is None:
        allowed_values = ()
    if not isinstance(allowed_values, (list, tuple)):
        add("allowed_values", "Give the allowed values as a list.")
        return errors
    if not allowed_values or type not in ATTRIBUTE_TYPES:
        return errors
    if type == "boolean":
        add("allowed_values", "A boolean attribute is true or false: it takes no list of allowed values.")
        return errors
    if len(allowed_values) > ATTRIBUTE_ALLOWED_VALUES_MAX:
        add("allowed_values", f"At most {ATTRIBUTE_ALLOWED_VALUES_MAX} values (this list has {len(allowed_values)}).")
        return errors
    seen: set[Any] = set()
    for index, value in enumerate(allowed_values):
        problem = _value_problem(value, type)
        if problem is not None:
            add(f"allowed_values[{index}]", f"{_shown(value)} {problem}.")
        elif isinstance(value, str) and not 0 < len(value) <= ATTRIBUTE_VALUE_MAX_LENGTH:
            add(f"allowed_values[{index}]", f"Use 1-{ATTRIBUTE_VALUE_MAX_LENGTH} characters.")
        elif _key(value) in seen:
            add(f"allowed_values[{index}]", f"{_shown(value)} is listed twice.")
        else:
            seen.add(_key(value))
    return errors


def _key(value: Any) -> tuple[str, Any]:
    # 1 and "1" are different values; 1 and 1.0 the same number.
    return ("number", float(value)) if _is_number(value) else ("string", value)


def _shown(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


# Attributes a condition tests ---------------------------------------------------------------


def attributes_in(condition: object) -> list[str]:
    """The attribute names a condition tests, in the order they first appear (``$and``, ``$or``,
    ``$nor`` and ``$not`` are followed; ``$elemMatch`` tests items, not attributes)."""
    found: dict[str, None] = {}
    stack: list[object] = [condition]
    while stack:
        item = stack.pop()
        if not isinstance(item, Mapping):
            continue
        children: list[object] = []
        for key, value in item.items():
            key = str(key)
            if key in _LOGICAL:
                children.extend(value if isinstance(value, list) else [value])
            elif not key.startswith("$"):
                found.setdefault(key, None)
        stack.extend(reversed(children))
    return list(found)


def attributes_unknown(condition: object, known: Iterable[str]) -> list[str]:
    """The attributes a condition tests that no definition names (a warning, never an error:
    applications may send attributes nobody defined)."""
    names = set(known)
    return [name for name in attributes_in(condition) if name not in names]


def definitions_by_name(definitions: Sequence[AttributeDefinition]) -> dict[str, AttributeDefinition]:
    return {d.name: d for d in definitions}
