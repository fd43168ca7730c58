"""Flag configuration in words, for the admin and the flag pages: rules, prerequisites and
segments as `flags.engine.describe` words them, and the warnings of `flags.engine.advice`
about a state whose rules change nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flags.documents import rule_document
from flags.engine.advice import moot_rules
from flags.engine.describe import describe_condition, describe_prerequisite, describe_rule, describe_value
from flags.models import FlagState, Rule, Segment

__all__ = ["prerequisites_summary", "rule_summary", "segment_summary", "state_warnings"]


def rule_summary(rule: Rule) -> str:
    """"forced to on when plan is pro", "serves on to 10% of users by id", ..."""
    return describe_rule(rule_document(rule))


def prerequisites_summary(prerequisites: Iterable[Any] | None) -> str:
    """"new-checkout is on and ranking is semantic", or "no prerequisites"."""
    words = [describe_prerequisite(p) for p in prerequisites or ()]
    return " and ".join(words) if words else "no prerequisites"


def segment_summary(segment: Segment) -> str:
    """Who is in the segment: its condition in words, or how many ids of which attribute."""
    if segment.kind == Segment.Kind.IDS:
        count = len(segment.ids or [])
        return f"{describe_value(segment.attribute or 'id')} is one of {count} listed value{'' if count == 1 else 's'}"
    return describe_condition(segment.condition)


def state_warnings(state: FlagState, rules: Iterable[Rule] | None = None) -> list[str]:
    """Why some of a state's rules change nothing (a rollout of the variant the flag falls
    through to anyway), one sentence each; `rules` in order, read from the state when None."""
    ordered = list(state.rules.order_by("position", "id")) if rules is None else list(rules)
    found = moot_rules(default_variant=state.default_variant, off_variant=state.off_variant,
                       rules=[rule_document(r) for r in ordered])
    return [m.message for m in found]
