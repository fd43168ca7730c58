"""JSON input with limits, shared by every API: parsed by orjson (which refuses numbers that
overflow to infinity and nesting beyond 1,024 levels), then held to a nesting depth.

Deeply nested documents are how one request exhausts the recursion of whatever reads it later
(validation, compilation, a JSON column, the next reader), so they are refused at the door.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["DEFAULT_MAX_DEPTH", "JsonInputError", "depth_exceeds", "loads_limited"]

DEFAULT_MAX_DEPTH = 32


class JsonInputError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests lists or objects more than `limit` levels deep (a scalar is level 0)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def loads_limited(raw: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse `raw`; JsonInputError(`parse_error` or `too_deep`) with a message for people."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in exc.msg or "recursion" in exc.msg:
            raise JsonInputError("too_deep", f"The JSON body is nested deeper than {max_depth} levels.") from exc
        raise JsonInputError("parse_error", f"The body is not valid JSON: {exc.msg}.") from exc
    # Counting brackets is a fast bound: a body with few of them cannot be deep.
    text = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if text.count(b"[") + text.count(b"{") > max_depth and depth_exceeds(value, max_depth):
        raise JsonInputError("too_deep", f"The JSON body is nested deeper than {max_depth} levels.")
    return value
