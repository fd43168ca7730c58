"""Checks of parsed JSON values that every reader of client input shares: how deep a document
nests and whether a string in it holds the NUL character (U+0000), which PostgreSQL text and
JSON columns refuse. Plain Python, no Django.
"""

from __future__ import annotations

from typing import Any

__all__ = ["holds_nul", "nested_deeper_than"]


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
