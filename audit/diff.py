"""Field-level diff of two JSON-like documents, for the audit log."""

from typing import Any


def _by_id(items: Any) -> dict[str, Any] | None:
    """Lists of objects with an "id" (rules, for instance) are compared item by item."""
    if isinstance(items, list) and all(isinstance(i, dict) and "id" in i for i in items):
        return {str(i["id"]): i for i in items}
    return None


def json_diff(before: Any, after: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Map each changed leaf path to {"before", "after"}; nested objects are walked by key."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: dict[str, dict[str, Any]] = {}
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            changes.update(json_diff(before.get(key), after.get(key), sub))
        return changes
    old_items, new_items = _by_id(before), _by_id(after)
    if old_items is not None and new_items is not None and (old_items or new_items):
        changes = {}
        for item_id in sorted(set(old_items) | set(new_items)):
            changes.update(json_diff(old_items.get(item_id), new_items.get(item_id), f"{path}[{item_id}]"))
        return changes
    if before == after:
        return {}
    return {path or "$": {"before": before, "after": after}}
