"""Field-level diff of two JSON-like documents, for the audit log."""

from typing import Any


def json_diff(before: Any, after: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Map each changed leaf path to {"before", "after"}; nested objects are walked by key."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: dict[str, dict[str, Any]] = {}
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            changes.update(json_diff(before.get(key), after.get(key), sub))
        return changes
    if before == after:
        return {}
    return {path or "$": {"before": before, "after": after}}
