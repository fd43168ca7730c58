"""What a client (public) SDK key may receive of an environment, and the GrowthBook payload made
private for it.

An environment's ``ClientPolicy`` says how client keys get their flags:

- ``full``: the payload with every rule, condition and id list (the default);
- ``private``: the payload with the **secure attributes** hashed: every value a condition
  compares a secure attribute with, and every id list matched against one, is replaced by the
  hex SHA-256 of the environment's salt followed by the value (GrowthBook's ``secureString``
  attributes); the application passes ``sha256(salt + value)`` for those attributes;
- ``encrypted``: the ``private`` payload, encrypted for the SDKs' ``decryptionKey`` (the
  encryption itself is done by the SDK edge);
- ``remote``: no payload at all; client keys evaluate remotely.

The secure attributes are those that segments marked private test: the attribute of a private
id list, the attributes named in a private condition. Equality and list membership can be
compared as hashes (implicit equality, ``$eq``, ``$ne``, ``$in``, ``$nin``, ``$all``,
``$elemMatch``, ``$inGroup``, ``$notInGroup``); ``private_condition_problems`` lists what a
private segment may not use because its value would have to be served as is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CLIENT_PAYLOAD_MODES",
    "ClientPolicy",
    "condition_attributes",
    "hash_secure_value",
    "private_condition_problems",
    "private_payload",
    "secure_attributes_of",
]

FULL, PRIVATE, ENCRYPTED, REMOTE = "full", "private", "encrypted", "remote"
CLIENT_PAYLOAD_MODES = (FULL, PRIVATE, ENCRYPTED, REMOTE)

_LOGIC = frozenset({"$and", "$or", "$nor"})
# Operators whose operand is compared for equality: it can be compared as a hash.
_EQUAL = frozenset({"$eq", "$ne"})
_LISTS = frozenset({"$in", "$nin", "$all"})
_GROUPS = frozenset({"$inGroup", "$notInGroup"})
# Operators that carry no value of the attribute.
_VALUELESS = frozenset({"$exists", "$type", "$size"})


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """How an environment serves client keys; ``decryption_key`` is the base64 AES key the SDKs'
    ``decryptionKey`` option takes, ``salt`` what secure attribute values are hashed with."""

    mode: str = FULL
    salt: str = ""
    decryption_key: str = ""
    secure_attributes: frozenset[str] = field(default_factory=frozenset)

    @property
    def hashes(self) -> bool:
        return self.mode in (PRIVATE, ENCRYPTED) and bool(self.secure_attributes)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "salt": self.salt, "decryption_key": self.decryption_key,
                "secure_attributes": sorted(self.secure_attributes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ClientPolicy:
        if not data:
            return cls()
        mode = str(data.get("mode", FULL))
        return cls(mode=mode if mode in CLIENT_PAYLOAD_MODES else REMOTE, salt=str(data.get("salt", "")),
                   decryption_key=str(data.get("decryption_key", "")),
                   secure_attributes=frozenset(str(a) for a in data.get("secure_attributes") or ()))


def hash_secure_value(value: Any, salt: str) -> str:
    """The hex SHA-256 of ``salt`` followed by the value (a string as is, anything else as its
    JSON text), as the application computes it for a secure attribute."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return hashlib.sha256((salt + text).encode("utf-8")).hexdigest()


def condition_attributes(condition: Any) -> set[str]:
    """The attributes a condition tests (through ``$and``, ``$or``, ``$nor`` and ``$not``)."""
    found: set[str] = set()
    if not isinstance(condition, Mapping):
        return found
    for name, operand in condition.items():
        if name in _LOGIC and isinstance(operand, list):
            for part in operand:
                found |= condition_attributes(part)
        elif name == "$not":
            found |= condition_attributes(operand)
        elif not name.startswith("$"):
            found.add(name)
    return found


def private_condition_problems(condition: Any) -> list[str]:
    """Why a condition cannot be served hashed: the operators it applies to an attribute whose
    operand would stay readable (comparisons, patterns, versions). Empty when it can."""
    problems: list[str] = []
    if not isinstance(condition, Mapping):
        return problems
    for name, operand in condition.items():
        if name in _LOGIC and isinstance(operand, list):
            for part in operand:
                problems += private_condition_problems(part)
        elif name == "$not":
            problems += private_condition_problems(operand)
        elif not name.startswith("$"):
            problems += [f"{name}: {op}" for op in _unhashable(operand)]
    return problems


def _unhashable(operand: Any) -> list[str]:
    if not _is_operator_object(operand):
        return []
    out: list[str] = []
    for op, value in operand.items():
        if op in ("$not", "$elemMatch"):
            if op == "$elemMatch" and not _is_operator_object(value):
                out.append("$elemMatch on fields")
            else:
                out += _unhashable(value)
        elif op not in _EQUAL | _LISTS | _GROUPS | _VALUELESS:
            out.append(op)
    return out


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(str(k).startswith("$") for k in value)


def private_payload(payload: Mapping[str, Any], policy: ClientPolicy) -> dict[str, Any]:
    """A copy of a GrowthBook payload with the values of secure attributes hashed in every
    rule condition, and the saved groups matched against them hashed. Unchanged without secure
    attributes."""
    out = dict(payload)
    if not policy.hashes:
        return out
    secure = policy.secure_attributes
    groups: set[str] = set()
    features: dict[str, Any] = {}
    for key, feature in (payload.get("features") or {}).items():
        rules = feature.get("rules") if isinstance(feature, Mapping) else None
        if not rules:
            features[key] = feature
            continue
        copied = []
        for rule in rules:
            if isinstance(rule, Mapping) and rule.get("condition"):
                rule = {**rule, "condition": _hash_condition(rule["condition"], secure, policy.salt, groups)}
            copied.append(rule)
        features[key] = {**feature, "rules": copied}
    out["features"] = features
    saved = payload.get("savedGroups")
    if saved:
        out["savedGroups"] = {
            name: [hash_secure_value(v, policy.salt) for v in values] if name in groups else values
            for name, values in saved.items()
        }
    return out


def _hash_condition(condition: Any, secure: frozenset[str], salt: str, groups: set[str]) -> Any:
    if not isinstance(condition, Mapping):
        return condition
    out: dict[str, Any] = {}
    for name, operand in condition.items():
        if name in _LOGIC and isinstance(operand, list):
            out[name] = [_hash_condition(part, secure, salt, groups) for part in operand]
        elif name == "$not":
            out[name] = _hash_condition(operand, secure, salt, groups)
        elif name in secure:
            out[name] = _hash_operand(operand, salt, groups)
        else:
            out[name] = operand
    return out


def _hash_operand(operand: Any, salt: str, groups: set[str]) -> Any:
    if not _is_operator_object(operand):
        # Implicit equality; a list is compared item by item with a list attribute.
        if isinstance(operand, list):
            return [hash_secure_value(v, salt) for v in operand]
        return hash_secure_value(operand, salt)
    out: dict[str, Any] = {}
    for op, value in operand.items():
        if op in _EQUAL:
            out[op] = hash_secure_value(value, salt)
        elif op in _LISTS and isinstance(value, list):
            out[op] = [hash_secure_value(v, salt) for v in value]
        elif op in _GROUPS:
            groups.add(str(value))
            out[op] = value
        elif op == "$not":
            out[op] = _hash_operand(value, salt, groups)
        elif op == "$elemMatch":
            out[op] = _hash_element(value, salt, groups)
        else:
            out[op] = value
    return out


def _hash_element(value: Any, salt: str, groups: set[str]) -> Any:
    """``$elemMatch`` takes an operator object for the items (or a condition on their fields,
    which is left alone: items of a secure list attribute are strings)."""
    return _hash_operand(value, salt, groups) if _is_operator_object(value) else value


def secure_attributes_of(segments: Iterable[tuple[str, str, Any]]) -> frozenset[str]:
    """The secure attributes private segments make: ``(kind, attribute, condition)`` each."""
    found: set[str] = set()
    for kind, attribute, condition in segments:
        if kind == "ids":
            found.add(attribute or "id")
        else:
            found |= condition_attributes(condition)
    return frozenset(found)
