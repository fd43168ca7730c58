"""Nesting depth and NUL characters of parsed JSON values."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from config.json_values import holds_nul, nested_deeper_than


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize(
    ("value", "depth"),
    [("text", 0), (12, 0), (None, 0), ({}, 1), ([], 1), ({"a": [1]}, 2), ([{"a": {"b": []}}], 4),
     ({"flat": 1, "deep": {"x": {"y": {"z": 1}}}}, 4)],
)
def test_nested_deeper_than__documents_of_known_depth__limit_is_inclusive(value: Any, depth: int) -> None:
    assert not nested_deeper_than(value, depth)
    if depth:
        assert nested_deeper_than(value, depth - 1)


def test_nested_deeper_than__wide_and_shallow__not_deep() -> None:
    wide = {"events": [{"id": str(i), "properties": {"a": [1, 2], "b": {"c": 1}}} for i in range(1000)]}
    assert not nested_deeper_than(wide, 5)
    assert nested_deeper_than(wide, 4)


def test_nested_deeper_than__far_beyond_the_recursion_limit__measured() -> None:
    assert nested_deeper_than(_nested(5000), 32)
    assert not nested_deeper_than(_nested(5000), 5000)


@pytest.mark.parametrize(
    "value",
    ["a\x00b", {"k\x00": 1}, {"k": ["x", {"y": "\x00"}]}, [[["\x00"]]], orjson.loads(b'{"a": "\\u0000"}')],
)
def test_holds_nul__nul_in_any_string_or_key__found(value: Any) -> None:
    assert holds_nul(value)


@pytest.mark.parametrize(
    "value",
    ["plain", 0, None, True, {"a": [1, 2.5, None]}, orjson.loads(b'{"a": "a literal \\\\u0000 is text"}')],
)
def test_holds_nul__no_nul__not_found(value: Any) -> None:
    assert not holds_nul(value)
