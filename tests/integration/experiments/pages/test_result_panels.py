"""The trend, slices and power panels of a results page by themselves: the fragment the page's
script fetches is the very panel the whole page draws for the same query, so a link reproduces
it; the forms still work as plain GET forms."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from experiments.models import Experiment
from tests.integration.pages import factories


@pytest.fixture
def winner(db: Any) -> Experiment:
    return factories.seed(factories.winner_plan(history=3, sequential=False, target_mde=15.0))


def _element(html: str, element_id: str) -> str:
    """The element with this id, through its matching closing tag."""
    start = html.index(f'id="{element_id}"')
    start = html.rindex("<", 0, start)
    tag = re.match(r"<(\w+)", html[start:])
    assert tag is not None
    depth, pos = 0, start
    for found in re.finditer(rf"<(/?){tag.group(1)}\b[^>]*>", html[start:]):
        depth += -1 if found.group(1) else 1
        if depth == 0:
            pos = start + found.end()
            break
    return html[start:pos]


@pytest.mark.parametrize(("panel", "query", "ids"), [
    ("slices", "slice=platform&slice_metric=revenue", ["slices"]),
    ("trend", "trend=revenue&diff=absolute", ["trend-panel"]),
    ("power", "mde=3", ["recommendation", "power"]),
])
def test_panel__same_html_as_the_whole_page_for_the_query(
    analyst_client: Client, winner: Experiment, panel: str, query: str, ids: list[str]
) -> None:
    page = analyst_client.get(f"/experiments/{winner.key}/?{query}").content.decode()
    response = analyst_client.get(f"/experiments/{winner.key}/panels/{panel}?{query}")

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    fragment = response.content.decode()
    assert "<html" not in fragment and "<body" not in fragment
    for element_id in ids:
        assert _element(fragment, element_id) == _element(page, element_id), element_id


def test_panels__what_each_shows(analyst_client: Client, winner: Experiment) -> None:
    base = f"/experiments/{winner.key}/panels"
    slices = analyst_client.get(f"{base}/slices?slice=platform").content.decode()
    assert sorted(set(re.findall(r'data-slice="([^"]+)"', slices))) == ["android", "ios", "web"]
    assert '<option selected>platform</option>' in slices
    trend = analyst_client.get(f"{base}/trend?trend=revenue").content.decode()
    assert "Cumulative lift of revenue" in trend and '<option value="revenue" selected>' in trend
    power = analyst_client.get(f"{base}/power?mde=3").content.decode()
    assert re.search(r'Target effect</div><div class="value">3\.0%<', power)
    assert 'data-verdict="' in power


def test_panel__forms_work_without_javascript(analyst_client: Client, winner: Experiment) -> None:
    html = analyst_client.get(f"/experiments/{winner.key}/?cuped=off&trend=revenue").content.decode()
    for panel, element_id in (("trend", "trend-panel"), ("slices", "slices"), ("power", "power")):
        form = re.search(rf'<form class="filters" method="get" data-panel="{element_id}" '
                         rf'data-panel-url="/experiments/{winner.key}/panels/{panel}">(.*?)</form>', html, re.S)
        assert form is not None, panel
        # Plain GET forms carrying the rest of the view; a button to submit without the script.
        assert '<input type="hidden" name="cuped" value="off">' in form.group(1), panel
        assert re.search(r"<noscript><button[^>]*>Show</button></noscript>|>Recalculate</button>", form.group(1))
    assert 'src="/static/pages/panels.js"' in html
    assert "onchange" not in html


def test_panel__unknown_name_or_no_results__404(analyst_client: Client, winner: Experiment) -> None:
    assert analyst_client.get(f"/experiments/{winner.key}/panels/everything").status_code == 404
    draft = factories.create_experiment(factories.flat_plan("no-results"), start=False)
    assert analyst_client.get(f"/experiments/{draft.key}/panels/slices").status_code == 404
    assert analyst_client.post(f"/experiments/{winner.key}/panels/slices").status_code == 405


def test_panel__needs_a_staff_login(client: Client, winner: Experiment) -> None:
    response = client.get(f"/experiments/{winner.key}/panels/slices")
    assert response.status_code == 302 and "/login/" in response["Location"]
