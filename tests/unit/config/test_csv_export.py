"""Spreadsheet-safe CSV cells: formulas become text, numbers stay numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from config.csv_export import csv_cell, csv_text


@pytest.mark.parametrize("text", ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "-", "=", "-inf", "--1"])
def test_csv_cell__formula_text__prefixed_with_a_quote(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-1, -1.5, Decimal("-2.50"), 0, 3.25, True, False])
def test_csv_cell__numbers_and_booleans__unchanged(value: object) -> None:
    assert csv_cell(value) is value


@pytest.mark.parametrize("text", ["-3", "+4", "-1.5", "-.5", "-1e-05", "+2.5E3", "US", "a=b", "", "'=quoted"])
def test_csv_cell__plain_text_and_numeric_text__unchanged(text: str) -> None:
    assert csv_cell(text) == text


def test_csv_cell__none__empty() -> None:
    assert csv_cell(None) == ""


def test_csv_text__every_cell_through_the_filter() -> None:
    text = csv_text(["a", "=b"], [["=HYPERLINK(\"http://x\")", -0.25, None], ["ok", "-9", "@x"]])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["a", "'=b"], ["'=HYPERLINK(\"http://x\")", "-0.25", ""], ["ok", "-9", "'@x"]]
