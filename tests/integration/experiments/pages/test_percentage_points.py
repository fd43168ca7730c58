"""Absolute differences of rates read in percentage points wherever the results page shows one
(table, forest plot, trend chart, slices, recommendation, power panel, list); other metrics keep
their own units; exports keep the raw numbers and say what they are measured in."""

from __future__ import annotations

import csv
import io
import json
import re
from html import unescape
from typing import Any

import pytest
from django.test import Client

from experiments.models import Experiment, ResultSnapshot
from tests.integration.pages import factories

PP = r"(?:[+-]?\d+\.\d+|0) pp"


@pytest.fixture
def winner(db: Any) -> Experiment:
    return factories.seed(factories.winner_plan(history=3))  # purchase: a conversion rate; revenue: a mean


@pytest.fixture
def absolute(db: Any) -> Experiment:
    return factories.seed(factories.flat_plan("absolute-rates", history=3,
                                              extra={"difference_type": "absolute", "target_mde": 0.1}))


def _row(html: str, metric: str, table: str = "goal-table") -> str:
    return html.split(f'id="{table}"')[1].split(f'data-metric="{metric}"')[1].split("</tr>")[0]


def _cell(row: str, css: str) -> str:
    found = re.search(rf'class="num {css}[^"]*">([^<]*)<', row)
    assert found is not None, row
    return found.group(1)


def _stored(experiment: Experiment, mode: str, metric: str) -> dict[str, Any]:
    snapshot = ResultSnapshot.objects.filter(experiment=experiment, status="success").latest("created_at")
    entry = next(m for m in snapshot.metrics if m["key"] == metric)
    return next(c for c in entry[mode] if c["difference_type"] == "absolute")


def test_absolute_view__rate_in_pp__mean_in_its_units(analyst_client: Client, winner: Experiment) -> None:
    html = analyst_client.get(f"/experiments/{winner.key}/?diff=absolute").content.decode()
    purchase = _row(html, "purchase")
    stored = _stored(winner, "sequential", "purchase")
    assert _cell(purchase, "estimate") == f"{stored['estimate'] * 100:+.2f} pp"
    assert re.fullmatch(rf"\[{PP}, {PP}\]", _cell(purchase, "interval"))
    revenue = _row(html, "revenue")
    assert "pp" not in _cell(revenue, "estimate") and "pp" not in _cell(revenue, "interval")

    # The forest plot of the rate: ticks and tooltips in pp; the mean's plot in its units.
    forest = unescape(html.split('id="forest"')[1].split('<h3>')[0])
    plots = re.findall(r'<svg .*?</svg>', forest, flags=re.S)
    purchase_plot = next(p for p in plots if "Forest plot: purchase" in p)
    revenue_plot = next(p for p in plots if "Forest plot: revenue" in p)
    assert re.search(rf"purchase · Treatment: {PP} \(interval {PP} to {PP}\)", purchase_plot)
    assert re.search(r">[+-]?\d+(\.\d+)? pp<", purchase_plot)  # an axis tick
    assert " pp" not in revenue_plot

    # The trend of the rate: axis and tooltips in pp.
    trend = unescape(html.split('id="trend"')[1].split("</svg>")[0])
    assert re.search(rf"Treatment at \d+ \w+ \d\d:\d\d: {PP} \({PP} to {PP}\)", trend)


def test_absolute_experiment__slices_recommendation_power_list_in_pp(
    analyst_client: Client, absolute: Experiment
) -> None:
    html = unescape(analyst_client.get(f"/experiments/{absolute.key}/").content.decode())
    slices = html.split('id="slice-table"')[1].split("</table>")[0]
    assert re.search(rf">\[{PP}, {PP}\]<", slices)
    assert re.search(rf"signup {PP} \[{PP}, {PP}\]", html.split('id="recommendation"')[1].split("</div>\n</div>")[0])
    # The target (10% relative on a 30% rate) is about 3 pp; ?mde= is read in pp too.
    target = re.search(r"Target effect</div><div class=\"value\">(\d+\.\d+) pp<", html)
    assert target is not None and float(target.group(1)) == pytest.approx(3.0, abs=0.5)
    assert 'for="mde">Target effect (pp)' in html
    again = unescape(analyst_client.get(f"/experiments/{absolute.key}/?mde=2").content.decode())
    assert 'Target effect</div><div class="value">2.00 pp<' in again
    listed = unescape(analyst_client.get("/experiments/").content.decode())
    assert re.search(rf"Treatment: {PP} \[{PP}, {PP}\]", listed)


def test_exports__raw_numbers__unit_named(analyst_client: Client, winner: Experiment) -> None:
    body = analyst_client.get(f"/experiments/{winner.key}/export.csv?diff=absolute").content.decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    purchase = next(r for r in rows if r["metric"] == "purchase" and r["difference_type"] == "absolute"
                    and r["analysis"] == "sequential" and not r["slice_attribute"])
    assert float(purchase["estimate"]) == pytest.approx(_stored(winner, "sequential", "purchase")["estimate"])
    assert purchase["unit"] == "absolute: proportion (0.0171 = +1.71 pp)"
    revenue = next(r for r in rows if r["metric"] == "revenue" and r["difference_type"] == "absolute")
    assert revenue["unit"] == "absolute: metric units"
    lift = next(r for r in rows if r["metric"] == "purchase" and r["difference_type"] == "relative")
    assert lift["unit"] == "relative: fraction of the control (0.05 = +5%)"
    document = json.loads(analyst_client.get(f"/experiments/{winner.key}/export.json").content)
    assert document["units"]["purchase"]["absolute"] == "absolute: proportion (0.0171 = +1.71 pp)"
