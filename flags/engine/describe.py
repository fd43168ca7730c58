"""Targeting conditions and flag rules in words, for the people who configure them.

``describe_condition({"plan": {"$in": ["pro", "business"]}, "country": "DE"})`` reads "plan is
one of pro, business and country is DE". ``describe_rule`` words a whole rule (what it serves,
to whom, under which prerequisites and when) from the rule's document, the shape the management
API and the audit log use (``flags.documents.rule_document``); missing fields take the rule
defaults, so a partial rule (a wizard's answers, say) is described as well.
``describe_prerequisite`` words one ``{"flag", "condition"}`` requirement ("new-checkout is on").

Every operator of the condition language has words. Anything without words (an unknown
operator, a malformed operand) is shown as compact JSON in its place, so a description never
hides a part of the condition. Lists are joined with commas, conditions with "and" and "or",
with parentheses where the two meet. The words are fragments ("forced to on when ..."), to be
capitalised by whoever starts a sentence with them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from config.json_text import json_text
from flags.engine.conditions import js_truthy

__all__ = ["EVERYONE", "describe_condition", "describe_hashing", "describe_prerequisite", "describe_rule",
           "describe_value"]

EVERYONE = "everyone"
NOBODY = "nobody"
# A longer list shows its first items and how many it holds.
LIST_SHOWN = 10
# A prerequisite without a condition requires its parent flag to be on.
PREREQUISITE_DEFAULT: Mapping[str, Any] = {"value": True}

# Words and how they combine: a compound of "and" inside one of "or" (or the other way round)
# is put in parentheses.
_Kind = Literal["atom", "and", "or"]
_Words = tuple[str, _Kind]

_PLAIN = re.compile(r"[^\s,\"'()\[\]{}]+")
_NUMERIC = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_VERBS = {
    "is": ("is", "is not"),
    "matches": ("matches", "does not match"),
    "contains": ("contains", "does not contain"),
    "has": ("has", "does not have"),
}
_NUMBER_ORDER = {"$gt": "greater than", "$gte": "at least", "$lt": "less than", "$lte": "at most"}
_TEXT_ORDER = {"$gt": "after", "$gte": "at or after", "$lt": "before", "$lte": "at or before"}
_VERSION_ORDER = {
    "$veq": "version {}", "$vgt": "a version after {}", "$vgte": "version {} or later",
    "$vlt": "a version before {}", "$vlte": "version {} or earlier",
}  # fmt: skip
_TYPES = {
    "string": "a string", "number": "a number", "boolean": "true or false", "object": "an object",
    "array": "a list", "null": "null",
}  # fmt: skip
# Operators that are the negation of another.
_OPPOSITES = {"$ne": "$eq", "$nin": "$in", "$nini": "$ini", "$vne": "$veq", "$notInGroup": "$inGroup"}


def describe_value(value: Any) -> str:
    """One value in a sentence: a plain word stays as it is (pro, DE, new-checkout); a string
    that could be read otherwise (empty, with spaces or commas, "true", "42") is quoted, and
    other values are JSON (true, 42, null, ["a"])."""
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and value not in ("true", "false", "null") and not _NUMERIC.fullmatch(value)
        return value if plain else json_text(value)
    return json_text(value)


def describe_condition(condition: object, *, segments: Iterable[str] = ()) -> str:
    """A condition in words, "everyone" when it is empty. ``segments`` are saved segments the
    unit must also be in (a rule's segments), worded first: "in segment beta-testers and ..."."""
    return _who(condition, segments)[0]


def describe_prerequisite(prerequisite: object) -> str:
    """One prerequisite in words: "new-checkout is on", "search-ranking is one of a, b"."""
    return _prerequisite(prerequisite)[0]


def describe_rule(rule: Mapping[str, Any]) -> str:
    """A rule in words, from its document (kind, variant, coverage, variations, weights,
    hash_attribute, fallback_attribute, condition, segments, prerequisites, starts_at, ends_at,
    enabled), for example "forced to annual-first when plan is one of pro, business" or
    "an experiment split: control 50%, treatment 50% (by id), from 2026-12-01 10:00 UTC"."""
    coverage = _share(rule.get("coverage"), 1.0)
    by = _hashed_by(rule)
    kind = rule.get("kind") or ("experiment" if rule.get("variations") else "force")
    variant = describe_value(rule.get("variant") or "")
    if kind == "experiment":
        of_users = "" if coverage >= 1 else f" of {_percent(coverage)} of users"
        what = f"an experiment split{of_users}: {_split(rule)} ({by})"
    elif kind == "rollout" or coverage < 1:
        # A forced value for a share of the units is a rollout, however it was entered.
        what = f"serves {variant} to {_percent(coverage)} of users {by}"
    else:
        what = f"forced to {variant}"
    clauses = [_who(rule.get("condition"), rule.get("segments") or ())]
    clauses += [_prerequisite(p) for p in _items(rule.get("prerequisites"))]
    clauses = [c for c in clauses if c[0] != EVERYONE]
    text = f"{what} when {_join(clauses, 'and')[0]}" if clauses else what
    schedule = _schedule(rule.get("starts_at"), rule.get("ends_at"))
    if schedule:
        text += f", {schedule}"
    return text + (" (disabled)" if rule.get("enabled") is False else "")


# --- conditions ---------------------------------------------------------------------------------


def _who(condition: object, segments: Iterable[str]) -> _Words:
    parts: list[_Words] = [(f"in segment {describe_value(s)}", "atom") for s in segments]
    # No condition at all holds for everyone, as an empty one does.
    words = _condition(condition) if condition is not None else (EVERYONE, "atom")
    if words[0] != EVERYONE:
        parts.append(words)
    return _join(parts, "and") if parts else (EVERYONE, "atom")


def _condition(condition: object, *, flag: str | None = None) -> _Words:
    """A condition object; ``flag`` names the flag whose ``value`` a prerequisite tests."""
    if not isinstance(condition, Mapping):
        return json_text(condition), "atom"
    parts: list[_Words] = []
    for key, value in condition.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            parts.extend(_logical(str(key), value))
        elif key == "$not" and isinstance(value, Mapping):
            inner = _condition(value)
            parts.append((NOBODY if inner[0] == EVERYONE else f"not ({inner[0]})", "atom"))
        else:
            of_flag = flag is not None and key == "value"
            subject = flag if flag is not None and of_flag else str(key)
            words = None if str(key).startswith("$") else _attribute(subject, value, on_off=of_flag)
            parts.append(words or (json_text({key: value}), "atom"))
    return _join(parts, "and") if parts else (EVERYONE, "atom")


def _logical(op: str, conditions: list[Any]) -> list[_Words]:
    branches = [_condition(c) for c in conditions]
    if op == "$and":
        return [b for b in branches if b[0] != EVERYONE]
    if op == "$or":
        # An empty "$or", or one with a branch everyone satisfies, holds for everyone.
        return [] if not branches or any(b[0] == EVERYONE for b in branches) else [_join(branches, "or")]
    if not branches:
        return [(NOBODY, "atom")]
    return [(f"not ({_join(branches, 'or')[0]})", "atom")]


def _attribute(subject: str, expected: Any, *, negate: bool = False, on_off: bool = False) -> _Words | None:
    """What one attribute must be; None when a part of it has no words."""
    if not _is_operator_object(expected):
        return _clause(subject, _plain(expected, negate, on_off)), "atom"
    if len(expected) > 1:
        parts = [_attribute(subject, {op: operand}, negate=negate, on_off=on_off) for op, operand in expected.items()]
        # Not all of them holds when any one of them does not.
        return None if None in parts else _join([p for p in parts if p is not None], "or" if negate else "and")
    ((op, operand),) = expected.items()
    if op in _OPPOSITES:
        op, negate = _OPPOSITES[op], not negate
    if op == "$not":
        return _attribute(subject, operand, negate=not negate, on_off=on_off)
    if op == "$size" and _is_operator_object(operand):
        return _attribute(f"the number of items in {subject}" if subject else "its number of items", operand,
                          negate=negate)
    if op == "$elemMatch" and isinstance(operand, Mapping):
        inner = _attribute("", operand) if _is_operator_object(operand) else _condition(operand)
        if inner is None:
            return None
        has = "has no item" if negate else "has an item"
        return _clause(subject, f"{has} {'that' if _is_operator_object(operand) else 'where'} {inner[0]}"), "atom"
    phrase = _phrase(op, operand, negate)
    return None if phrase is None else (_clause(subject, phrase), "atom")


def _plain(expected: Any, negate: bool, on_off: bool) -> str:
    if expected is None:
        return _VERBS["is"][not negate] + " set"
    if on_off and isinstance(expected, bool):
        return f"{_VERBS['is'][negate]} {'on' if expected else 'off'}"
    return f"{_VERBS['is'][negate]} {describe_value(expected)}"


def _phrase(op: str, operand: Any, negate: bool) -> str | None:
    """What ``op`` asks of a value, without the value's name ("is one of a, b")."""
    is_ = _VERBS["is"][negate]
    case = " (ignoring case)" if op in ("$ini", "$alli", "$regexi") else ""
    if op == "$eq":
        # A missing attribute reads as null.
        return f"{_VERBS['is'][not negate]} set" if operand is None else f"{is_} {describe_value(operand)}"
    if op in ("$in", "$ini") and isinstance(operand, list):
        if len(operand) == 1:
            return f"{is_} {describe_value(operand[0])}{case}"
        return f"is {'none of' if negate else 'one of'} {_list(operand)}{case}"
    if op in ("$all", "$alli") and isinstance(operand, list):
        contains = _VERBS["contains"][negate]
        return f"{contains} {describe_value(operand[0]) if len(operand) == 1 else 'all of ' + _list(operand)}{case}"
    if op in _NUMBER_ORDER and _is_number(operand):
        return f"{is_} {_NUMBER_ORDER[op]} {describe_value(operand)}"
    if op in _TEXT_ORDER and isinstance(operand, str):
        return f"{is_} {_TEXT_ORDER[op]} {describe_value(operand)}"
    if op in _VERSION_ORDER and (isinstance(operand, str) or _is_number(operand)):
        return f"{is_} {_VERSION_ORDER[op].format(describe_value(operand))}"
    if op in ("$regex", "$regexi") and isinstance(operand, str):
        return f"{_VERBS['matches'][negate]} the pattern {describe_value(operand)}{case}"
    if op == "$exists":
        return f"{_VERBS['is'][negate == js_truthy(operand)]} set"
    if op == "$type" and operand in _TYPES:
        return f"{is_} {_TYPES[operand]}"
    if op == "$size" and _is_number(operand):
        return f"{_VERBS['has'][negate]} {describe_value(operand)} item{'' if operand == 1 else 's'}"
    if op == "$inGroup" and isinstance(operand, str):
        return f"{is_} in segment {describe_value(operand)}"
    return None


def _prerequisite(prerequisite: object) -> _Words:
    if not isinstance(prerequisite, Mapping) or not isinstance(prerequisite.get("flag"), str):
        return json_text(prerequisite), "atom"
    flag, condition = prerequisite["flag"], prerequisite.get("condition")
    if not isinstance(condition, Mapping):
        condition = PREREQUISITE_DEFAULT
    if not condition:
        return f"{describe_value(flag)} has any value", "atom"
    return _condition(condition, flag=describe_value(flag))


# --- pieces -------------------------------------------------------------------------------------


def _join(parts: Sequence[_Words], word: Literal["and", "or"]) -> _Words:
    if len(parts) == 1:
        return parts[0]
    other = "or" if word == "and" else "and"
    return f" {word} ".join(f"({text})" if kind == other else text for text, kind in parts), word


def _clause(subject: str, phrase: str) -> str:
    return f"{subject} {phrase}" if subject else phrase


def _list(values: Sequence[Any]) -> str:
    if not values:
        return "an empty list"
    shown = ", ".join(describe_value(v) for v in values[:LIST_SHOWN])
    return shown if len(values) <= LIST_SHOWN else f"{shown}, … ({len(values)} in all)"


def _is_operator_object(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) > 0 and all(str(k).startswith("$") for k in value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _items(value: object) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _share(value: object, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _percent(share: float) -> str:
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _hashed_by(rule: Mapping[str, Any]) -> str:
    return describe_hashing(rule.get("hash_attribute"), rule.get("fallback_attribute"))


def describe_hashing(hash_attribute: object, fallback_attribute: object = None) -> str:
    """How units are picked for a share: "by id", "by company, or id when company is missing"."""
    attribute = describe_value(hash_attribute or "id")
    fallback = f", or {describe_value(fallback_attribute)} when {attribute} is missing" if fallback_attribute else ""
    return f"by {attribute}{fallback}"


def _split(rule: Mapping[str, Any]) -> str:
    variations = _items(rule.get("variations"))
    weights = [_share(w, 0.0) for w in _items(rule.get("weights"))]
    if len(weights) != len(variations):
        # Without weights for every variation, the split is even.
        weights = [1 / len(variations)] * len(variations) if variations else []
    return ", ".join(f"{describe_value(v)} {_percent(w)}" for v, w in zip(variations, weights, strict=True))


def _moment(value: object) -> str | None:
    """A schedule boundary (a datetime or its ISO text, UTC when it names no zone) as UTC."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _schedule(starts_at: object, ends_at: object) -> str:
    start, end = _moment(starts_at), _moment(ends_at)
    return " ".join(part for part in (start and f"from {start}", end and f"until {end}") if part)
