"""Values as people read them: JSON text (`false`, `null`, `{"cta": "Try it"}`), never Python's
reprs (`False`, `None`, `{'cta': 'Try it'}`). Every page, admin column and audit diff that shows
a configured value goes through `json_text`. Plain Python, no Django.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_text"]


def json_text(value: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """`value` as JSON text: strings quoted, tuples as lists, non-ASCII characters as they are,
    and anything JSON has no type for (a date, a decimal) as its text."""
    return json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys, default=str)
