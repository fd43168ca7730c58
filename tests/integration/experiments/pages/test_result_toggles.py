"""The toggles of the results page (analysis, CUPED, difference type) pick stored views for the
table, forest plot, trend and exports; readouts stored before every view was kept still render."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest
from django.test import Client

from experiments.models import Experiment, ResultSnapshot
from pages.presentation.formatting import difference_unit, fmt_interval
from tests.integration.pages import factories


@pytest.fixture
def winner(db: Any) -> Experiment:
    return factories.seed(factories.winner_plan(history=3))  # sequential, CUPED on, relative


def _latest(experiment: Experiment) -> ResultSnapshot:
    snapshot = ResultSnapshot.objects.filter(experiment=experiment, status="success").order_by("-created_at").first()
    assert snapshot is not None
    return snapshot


def _stored(experiment: Experiment, mode: str, dtype: str, metric: str = "purchase") -> dict[str, Any]:
    entry = next(m for m in _latest(experiment).metrics if m["key"] == metric)
    return next(c for c in entry[mode] if c["difference_type"] == dtype)


def _interval(client: Client, experiment: Experiment, query: str, metric: str = "purchase") -> str:
    html = client.get(f"/experiments/{experiment.key}/{query}").content.decode()
    row = html.split(f'data-metric="{metric}"')[1].split("</tr>")[0]
    found = re.search(r'class="num interval">([^<]*)<', row)
    assert found is not None
    return found.group(1)


def _text(client: Client, path: str) -> str:
    html = client.get(path).content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _expected(stored: dict[str, Any], dtype: str) -> str:
    # purchase is a conversion metric: absolute differences read in percentage points.
    return fmt_interval(stored["ci_low"], stored["ci_high"], difference_unit("conversion", dtype))


@pytest.mark.parametrize(("query", "mode", "dtype"), [
    ("", "sequential", "relative"),
    ("?cuped=off", "sequential_unadjusted", "relative"),
    ("?diff=absolute", "sequential", "absolute"),
    ("?cuped=off&diff=absolute", "sequential_unadjusted", "absolute"),
    ("?analysis=fixed", "cuped", "relative"),
    ("?analysis=fixed&cuped=off&diff=absolute", "fixed", "absolute"),
])
def test_results_page__toggles__table_shows_the_stored_view(
    analyst_client: Client, winner: Experiment, query: str, mode: str, dtype: str
) -> None:
    expected = _expected(_stored(winner, mode, dtype), dtype)
    assert _interval(analyst_client, winner, query) == expected


def test_results_page__sequential_cuped_off__says_what_it_shows(analyst_client: Client, winner: Experiment) -> None:
    text = _text(analyst_client, f"/experiments/{winner.key}/?cuped=off")
    assert "Showing: sequential (always-valid), unadjusted" in text
    assert "not the experiment's configured analysis" in text
    html = analyst_client.get(f"/experiments/{winner.key}/?cuped=off").content.decode()
    toggle = html.split('id="toggle-cuped"')[1].split("</span>")[0]
    assert 'data-value="on"' in toggle and 'data-value="off"' in toggle
    assert 'id="trend-note"' not in html


def test_results_page__other_view__recommendation_unchanged(analyst_client: Client, winner: Experiment) -> None:
    def verdict(query: str) -> str:
        html = analyst_client.get(f"/experiments/{winner.key}/{query}").content.decode()
        found = re.search(r'data-verdict="([a-z_]+)"', html)
        assert found is not None
        return found.group(1)

    assert verdict("") == verdict("?analysis=fixed&cuped=off&diff=absolute") == "ship"


def test_results_page__absolute__forest_and_trend_follow(analyst_client: Client, winner: Experiment) -> None:
    html = analyst_client.get(f"/experiments/{winner.key}/?diff=absolute&cuped=off").content.decode()
    assert "Cumulative difference of purchase" in html
    forest = html.split('id="forest"')[1].split('id="trend"')[0]
    assert "Forest plot: purchase" in forest  # one plot per metric for absolute differences
    relative = analyst_client.get(f"/experiments/{winner.key}/").content.decode()
    assert "Cumulative lift of purchase" in relative


def _make_old(experiment: Experiment) -> None:
    """Rewrite the stored readouts as the old readout wrote them: one difference type per mode,
    the sequential analysis only with the experiment's CUPED setting."""
    for snapshot in ResultSnapshot.objects.filter(experiment=experiment):
        metrics = []
        for metric in snapshot.metrics:
            metric = {k: v for k, v in metric.items() if k != "sequential_unadjusted"}
            for mode in ("fixed", "cuped", "sequential"):
                metric[mode] = [c for c in metric[mode] if c["difference_type"] == "relative"]
            metrics.append(metric)
        ResultSnapshot.objects.filter(pk=snapshot.pk).update(metrics=metrics)


def test_results_page__old_snapshot__falls_back_and_says_so(analyst_client: Client, winner: Experiment) -> None:
    _make_old(winner)
    response = analyst_client.get(f"/experiments/{winner.key}/?cuped=off&diff=absolute")
    assert response.status_code == 200
    text = _text(analyst_client, f"/experiments/{winner.key}/?cuped=off&diff=absolute")
    assert "Sequential results without CUPED are not available for this readout" in text
    assert "stored relative results only" in text
    html = response.content.decode()
    toggle = html.split('id="toggle-diff"')[1].split('id="toggle-showing"')[0]
    assert '<span class="disabled">Absolute</span>' in toggle
    assert _interval(analyst_client, winner, "?cuped=off&diff=absolute") == _expected(
        _stored(winner, "sequential", "relative"), "relative")
    # The fixed-horizon table still switches CUPED: both were stored before.
    assert _interval(analyst_client, winner, "?analysis=fixed&cuped=off") == _expected(
        _stored(winner, "fixed", "relative"), "relative")
    # The trend of the unadjusted view leaves the old readouts out, with a note.
    trend = _text(analyst_client, f"/experiments/{winner.key}/?analysis=fixed&cuped=off")
    assert "older readouts did not store this view" in trend
    assert analyst_client.get(f"/experiments/{winner.key}/export.csv").status_code == 200


def test_results_page__fixed_experiment__sequential_offered(analyst_client: Client, db: Any) -> None:
    experiment = factories.seed(factories.flat_plan("flat-fixed", history=2))  # fixed horizon, CUPED on
    html = analyst_client.get(f"/experiments/{experiment.key}/").content.decode()
    toggle = html.split('id="toggle-analysis"')[1].split("</span>")[0]
    assert 'data-value="sequential"' in toggle
    assert _interval(analyst_client, experiment, "?analysis=sequential&cuped=off", "signup") == _expected(
        _stored(experiment, "sequential_unadjusted", "relative", "signup"), "relative")


def test_results_page__unknown_toggle_values__default_view(analyst_client: Client, winner: Experiment) -> None:
    response = analyst_client.get(f"/experiments/{winner.key}/?analysis=bayes&cuped=maybe&diff=ratio")
    assert response.status_code == 200
    assert _interval(analyst_client, winner, "?analysis=bayes&cuped=maybe&diff=ratio") == _expected(
        _stored(winner, "sequential", "relative"), "relative")


def test_export_csv__selected_view__marked(analyst_client: Client, winner: Experiment) -> None:
    html = analyst_client.get(f"/experiments/{winner.key}/?cuped=off&diff=absolute").content.decode()
    link = re.search(r'id="export-csv" href="([^"]+)"', html)
    assert link is not None
    url = link.group(1).replace("&amp;", "&")
    assert "cuped=off" in url and "diff=absolute" in url and "analysis=sequential" in url
    rows = list(csv.DictReader(io.StringIO(analyst_client.get(url).content.decode())))
    overall = [r for r in rows if not r["slice_attribute"]]
    selected = [r for r in overall if r["selected"] == "True"]
    assert {(r["analysis"], r["difference_type"]) for r in selected} == {("sequential_unadjusted", "absolute")}
    assert len(selected) == 4  # one per metric
    headline = [r for r in overall if r["headline"] == "True"]
    assert {(r["analysis"], r["difference_type"]) for r in headline} == {("sequential", "relative")}
    stored = _stored(winner, "sequential_unadjusted", "absolute")
    purchase = next(r for r in selected if r["metric"] == "purchase")
    assert float(purchase["estimate"]) == pytest.approx(stored["estimate"])


def test_results_api_and_json_export__expose_every_view(
    read_client: Any, analyst_client: Client, winner: Experiment
) -> None:
    body = read_client.get(f"/api/v1/experiments/{winner.key}/results").json()
    purchase = next(m for m in body["latest"]["metrics"] if m["key"] == "purchase")
    for mode in ("fixed", "cuped", "sequential", "sequential_unadjusted"):
        assert [c["difference_type"] for c in purchase[mode]] == ["relative", "absolute"]
        assert all("chance_to_win" in c and "p_value" in c for c in purchase[mode])
    export = json.loads(analyst_client.get(f"/experiments/{winner.key}/export.json").content)
    assert export["metrics"][0]["sequential_unadjusted"] == purchase["sequential_unadjusted"]
    assert export["selected_view"] == {"analysis": "sequential", "cuped": True, "mode": "sequential",
                                       "difference_type": "relative"}
    html = analyst_client.get(f"/experiments/{winner.key}/?analysis=fixed&cuped=off&diff=absolute").content.decode()
    link = re.search(r'id="export-json" href="([^"]+)"', html)
    assert link is not None
    chosen = json.loads(analyst_client.get(link.group(1).replace("&amp;", "&")).content)["selected_view"]
    assert chosen == {"analysis": "fixed", "cuped": False, "mode": "fixed", "difference_type": "absolute"}
