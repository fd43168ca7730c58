"""The audit history of flags and segments in words: next to a changed rule (its condition,
segments, variant, share, split, prerequisites or schedule) the whole rule before and after,
as `flags.engine.describe` words it; next to changed prerequisites, metadata or a segment's
condition, those. The documents are the audit log's (`flags.documents`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from base.admin import DiffWords
from flags.engine.describe import describe_condition, describe_rule
from flags.summaries import prerequisites_summary

__all__ = ["flag_change_words", "flag_diff_words", "metadata_words", "segment_diff_words"]

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
    if path == "metadata" or path.startswith("metadata."):
        return DiffWords("metadata", *(
            metadata_words(d.get("metadata")) if isinstance(d, Mapping) else "" for d in (before, after)
        ))
    if path == "prerequisites" or path.startswith(("prerequisites.", "prerequisites[")):
        return DiffWords("prerequisites", *(
            prerequisites_summary(d.get("prerequisites")) if isinstance(d, Mapping) else "" for d in (before, after)
        ))
    return None


def metadata_words(metadata: Any) -> str:
    """A flag's metadata in one line, keys in order: 'release "1.0.2", cost_weight 0.5, pii false'."""
    if not isinstance(metadata, Mapping) or not metadata:
        return "no metadata"
    return ", ".join(f"{key} {json.dumps(metadata[key], ensure_ascii=False)}" for key in sorted(metadata, key=str))


def flag_change_words(diff: Mapping[str, Any] | None, before: Any, after: Any) -> list[str]:
    """One sentence per rule an audit entry of a flag adds, changes or removes, for lists of
    changes: "Rule added in production: serves on to 20% of users by id"."""
    sentences = []
    seen: set[tuple[str, str]] = set()
    for path in diff or {}:
        match = _RULE_PATH.match(path)
        if match is None or match["field"] in _UNWORDED_RULE_FIELDS:
            continue
        environment, rule_id = match["environment"], match["rule"]
        if (environment, rule_id) in seen:
            continue
        seen.add((environment, rule_id))
        old, new = _rule_of(before, environment, rule_id), _rule_of(after, environment, rule_id)
        if old is None and new is not None:
            sentences.append(f"Rule added in {environment}: {describe_rule(new)}")
        elif new is None and old is not None:
            sentences.append(f"Rule removed in {environment}: {describe_rule(old)}")
        elif old is not None and new is not None and describe_rule(old) != describe_rule(new):
            sentences.append(f"Rule changed in {environment}: now {describe_rule(new)} (was: {describe_rule(old)})")
    return sentences


def segment_diff_words(path: str, before: Any, after: Any) -> DiffWords | None:
    """Words for one row of a segment's diff: its condition, before and after."""
    if path != "condition" and not path.startswith("condition."):
        return None
    return DiffWords("condition", *(
        describe_condition(d.get("condition")) if isinstance(d, Mapping) and d.get("kind") != "ids" else ""
        for d in (before, after)
    ))
