"""The audit history of flags and segments in words: next to a changed rule (its condition,
segments, variant, share, split, prerequisites or schedule) the whole rule before and after,
as `flags.engine.describe` words it; next to changed prerequisites or a segment's condition,
those. The documents are the audit log's (`flags.documents`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from base.admin import DiffWords
from flags.engine.describe import describe_condition, describe_rule
from flags.summaries import prerequisites_summary

__all__ = ["flag_diff_words", "segment_diff_words"]

_RULE_PATH = re.compile(r"^environments\.(?P<environment>.+?)\.rules\[(?P<rule>[^\]]+)\](?:\.(?P<field>[^.\[]+))?")
# Rule fields whose change leaves what the rule serves, and to whom, as it was.
_UNWORDED_RULE_FIELDS = frozenset({"id", "position", "description", "seed", "phase", "experiment_key"})


def _rule_of(document: Any, environment: str, rule_id: str) -> Mapping[str, Any] | None:
    if not isinstance(document, Mapping):
        return None
    state = (document.get("environments") or {}).get(environment)
    rules = state.get("rules") if isinstance(state, Mapping) else None
    return next((r for r in rules or () if isinstance(r, Mapping) and str(r.get("id")) == rule_id), None)


def flag_diff_words(path: str, before: Any, after: Any) -> DiffWords | None:
    """Words for one row of a flag's diff; ``before`` and ``after`` are the entry's documents."""
    match = _RULE_PATH.match(path)
    if match is not None:
        if match["field"] in _UNWORDED_RULE_FIELDS:
            return None
        environment, rule_id = match["environment"], match["rule"]
        words = []
        for document in (before, after):
            rule = _rule_of(document, environment, rule_id)
            words.append(describe_rule(rule) if rule is not None else "")
        return DiffWords(f"rule {rule_id} in {environment}", *words)
    if path == "prerequisites" or path.startswith(("prerequisites.", "prerequisites[")):
        return DiffWords("prerequisites", *(
            prerequisites_summary(d.get("prerequisites")) if isinstance(d, Mapping) else "" for d in (before, after)
        ))
    return None


def segment_diff_words(path: str, before: Any, after: Any) -> DiffWords | None:
    """Words for one row of a segment's diff: its condition, before and after."""
    if path != "condition" and not path.startswith("condition."):
        return None
    return DiffWords("condition", *(
        describe_condition(d.get("condition")) if isinstance(d, Mapping) and d.get("kind") != "ids" else ""
        for d in (before, after)
    ))
