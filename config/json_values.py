"""JSON input with limits, shared by every reader of client input (the management API's parser
and the SDK edge's body reader): parsing with orjson (which refuses numbers that overflow to
infinity), how deep a document nests, and whether a string in it holds the NUL character
(U+0000), which PostgreSQL text and JSON columns refuse. Plain Python, no Django.

Deeply nested documents are how one request exhausts the recursion of whatever reads it later
(validation, compilation, a JSON column, the next reader), so they are refused at the door.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["DEFAULT_MAX_DEPTH", "JsonInputError", "holds_nul", "loads_limited", "nested_deeper_than"]


def nested_deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests objects or arrays more than ``limit`` levels deep (a scalar is
    level 0, ``{"a": [1]}`` level 2). One pass per level, without recursion, so a document far
    deeper than Python's recursion limit is measured too. ``value`` is parsed JSON, so exact
    type checks suffice; they keep the walk of an events batch cheaper than its parsing."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        push = below.append
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    push(child)
        level = below
    return False


def holds_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` (an object key included) contains U+0000."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


DEFAULT_MAX_DEPTH = 32


class JsonInputError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
    if text.count(b"[") + text.count(b"{") > max_depth and nested_deeper_than(value, max_depth):
        raise JsonInputError("too_deep", f"The JSON body is nested deeper than {max_depth} levels.")
    return value
