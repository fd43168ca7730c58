"""CSV files that are safe to open in a spreadsheet. Plain Python, no Django.

Text a client chose (slice values, variation and metric keys, error messages) can reach an
export. A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula, which can fetch URLs or run commands. As the
OWASP guidance on CSV injection asks, such text is written with a leading single quote, which
the spreadsheet shows as plain text. Numbers (int, float, Decimal) and text that is exactly a
decimal number (`-3`, `+1.5e3`) stay as they are: a negative number is a number, not a formula.
Every CSV the service writes goes through `csv_text`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

__all__ = ["FORMULA_PREFIXES", "csv_cell", "csv_text"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """`value` ready for `csv.writer`: None as an empty cell, numbers and booleans unchanged,
    text that a spreadsheet would run as a formula prefixed with a single quote."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """The header and rows as CSV text, every cell through `csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()
