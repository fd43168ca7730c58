from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from config.json_text import json_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (False, "false"),
        (True, "true"),
        (None, "null"),
        (25, "25"),
        (0.5, "0.5"),
        ("@example\\.com$", '"@example\\\\.com$"'),
        ({"cta": "Try it free", "layout": "compact"}, '{"cta": "Try it free", "layout": "compact"}'),
        (("a", "b"), '["a", "b"]'),
        ("Größe", '"Größe"'),
        (datetime(2026, 12, 1, 10, 0, tzinfo=UTC), '"2026-12-01 10:00:00+00:00"'),
    ],
)
def test_json_text__values_as_json_never_python_reprs(value: Any, text: str) -> None:
    assert json_text(value) == text


def test_json_text__indent_and_sorted_keys() -> None:
    assert json_text({"b": 1, "a": [True]}, indent=2, sort_keys=True) == '{\n  "a": [\n    true\n  ],\n  "b": 1\n}'
