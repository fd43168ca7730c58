"""Template filters that show configuration as people read it: values as JSON (`false`, not
Python's `False`) and rules, conditions and prerequisites in words.

    {% load flag_words %}
    {{ variant.value|json_value }}        {"cta": "Try it free"}
    {{ rule|rule_words }}                 forced to on when plan is pro
    {{ condition|condition_words }}       country is one of DE, FR
    {{ prerequisite|prerequisite_words }} new-checkout is on
    {{ experiment|targeting_words }}      in segment eu-customers and plan is pro
    {{ audit_entry|change_words }}        ["Rule added in production: serves on to 20% of users by id"]

`rule_words` takes a rule row or a rule's document (`flags.documents.rule_document`'s shape; a
guided creation's split works too: kind, variations, weights, coverage, condition).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from audit.models import AuditEntry
from config.json_text import json_text
from flags.engine.describe import describe_condition, describe_prerequisite, describe_rule
from flags.models import Rule
from flags.summaries import rule_summary

register = template.Library()


@register.filter
def json_value(value: Any) -> str:
    return json_text(value)


@register.filter
def rule_words(rule: Rule | Mapping[str, Any]) -> str:
    return rule_summary(rule) if isinstance(rule, Rule) else describe_rule(rule)


@register.filter
def condition_words(condition: Any) -> str:
    return describe_condition(condition)


@register.filter
def targeting_words(target: Any) -> str:
    """Who an experiment (anything with `condition` and `segments`) lets in: "everyone" or words."""
    segments = getattr(target, "segments", None) or ()
    return describe_condition(getattr(target, "condition", None) or {}, segments=segments)


@register.filter
def prerequisite_words(prerequisite: Any) -> str:
    return describe_prerequisite(prerequisite)


@register.filter
def change_words(entry: AuditEntry) -> list[str]:
    """The rules an audit entry of a flag added, changed or removed, one sentence each."""
    # Imported here: the audit words stand on the admin's diff rows, and template libraries are
    # loaded while the admin itself is still being imported.
    from flags.history_words import flag_change_words

    return flag_change_words(entry.diff, entry.before, entry.after)
