"""Warnings about configurations that are valid but do not do what they look like they do.

``moot_rules`` finds the rules of one flag state that change nothing: a rule that serves the
variant the flag falls through to (its default) when nothing after it could serve anything
else. The classic case is a boolean flag whose default is ``on`` with a rule "serve on to 20%
of eu-customers": the 80% the rule leaves out, and everyone outside the segment, get ``on``
from the fall-through anyway, so the rollout is moot.

Rules are documents (``flags.documents.rule_document``'s shape, as ``describe`` takes them);
disabled rules serve nothing and are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flags.engine.describe import describe_rule, describe_value

__all__ = ["MootRule", "moot_rules"]

_SERVING_KINDS = ("force", "rollout")


@dataclass(frozen=True, slots=True)
class MootRule:
    """One rule that changes nothing, with the sentence that says why."""

    position: int  # 1-based, in evaluation order
    variant: str
    percentage: bool  # a rollout (hashed share) rather than a forced value
    message: str


def _coverage(rule: Mapping[str, Any]) -> float:
    value = rule.get("coverage", 1.0)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 1.0


def _is_percentage(rule: Mapping[str, Any]) -> bool:
    return rule.get("kind") == "rollout" or _coverage(rule) < 1.0


def _serves(rule: Mapping[str, Any]) -> str | None:
    """The one variant an enabled force or rollout rule serves; None for other rules."""
    if rule.get("enabled") is False or rule.get("kind") not in _SERVING_KINDS:
        return None
    variant = rule.get("variant")
    return variant if isinstance(variant, str) and variant else None


def _active(rule: Mapping[str, Any]) -> bool:
    return rule.get("enabled") is not False


def moot_rules(
    *, default_variant: str, rules: Sequence[Mapping[str, Any]], off_variant: str | None = None
) -> list[MootRule]:
    """The rules that serve the fall-through variant with nothing after them that serves any
    other variant: removing them would change no unit's value.

    ``off_variant`` (the variant served when the flag is off) is suggested as the default when
    it differs from what the rule serves.
    """
    found: list[MootRule] = []
    # Walking backwards: a rule is moot while every active rule after it serves the default too.
    only_default_after = True
    for index in range(len(rules) - 1, -1, -1):
        rule = rules[index]
        if not _active(rule):
            continue
        variant = _serves(rule)
        if variant is None or variant != default_variant:
            only_default_after = False
            continue
        if only_default_after:
            found.append(_moot(index + 1, rule, variant, off_variant))
    found.reverse()
    return found


def _moot(position: int, rule: Mapping[str, Any], variant: str, off_variant: str | None) -> MootRule:
    shown = describe_value(variant)
    percentage = _is_percentage(rule)
    what = f"Rule {position} ({describe_rule(rule)})"
    if percentage:
        why = (f"{what} hands out {shown}, but the units it leaves out get {shown} too: it is also what the flag "
               "serves when no rule matches, so the rollout changes nothing.")
    else:
        why = f"{what} serves {shown}, which is also what the flag serves when no rule matches: it changes nothing."
    if off_variant and off_variant != variant:
        fix = f" To serve {shown} only to the units the rule picks, set the default to {describe_value(off_variant)}."
    else:
        fix = f" To serve {shown} only to the units the rule picks, set the default to another variant."
    return MootRule(position=position, variant=variant, percentage=percentage, message=why + fix)
