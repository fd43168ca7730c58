"""The results page of a Bayesian experiment in headless Chromium: the table shows the credible
interval, the chance to beat the control and the risk instead of p-values, the recommendation
reads the chance-to-win and risk thresholds, the analysis toggle offers the Bayesian and
fixed-horizon views, and the slices panel flags the one country whose lift differs from the
rest while calling the others noise. Screenshots go to docs/img/ for docs/reading-results.md."""

from __future__ import annotations

from typing import Any

import pytest

from experiments.models import Experiment
from tests.browser.test_results_pages import Page, browser  # noqa: F401 - the fixture
from tests.integration.pages import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bayesian(db: Any) -> Experiment:
    plan = factories.winner_plan(key="bayes-checkout", sequential=False,
                                 extra={"stats_engine": "bayesian", "prior_enabled": True},
                                 slice_effects={("country", "DE"): 5.0})
    experiment = factories.seed(plan)
    factories.staff_user("analyst")
    return experiment


def test_browser__bayesian_results_page__posterior_numbers_thresholds_and_slice_flags(
    browser: Page, bayesian: Experiment  # noqa: F811
) -> None:
    browser.login("analyst")
    page = browser.page
    browser.go(f"/experiments/{bayesian.key}/")
    assert "Bayesian engine" in (page.text_content("#analysis-settings") or "")
    assert "prior N(0.0, 0.3²)" in (page.text_content("#analysis-settings") or "")
    headers = [h.strip() for h in page.locator("#goal-table thead th").all_text_contents()]
    assert "Credible interval" in headers and "Chance to beat control" in headers and "Risk" in headers
    assert not any(h.startswith("p") for h in headers)
    row = "#goal-table tr[data-metric=purchase]"
    assert page.inner_text(f"{row} td.chance").endswith("%")
    assert page.inner_text(f"{row} td.risk").endswith("%")
    assert page.inner_text(f"{row} td.verdict") == "probably better (credible)"
    assert "Bayesian posterior, CUPED-adjusted" in page.inner_text("#toggle-showing")
    assert page.get_attribute("#recommendation", "data-verdict") == "ship"
    words = page.inner_text("#recommendation")
    assert "Chance to beat the control" in words and "threshold" in words and "Risk of choosing it" in words
    browser.shot("results-bayesian.png", selector="#goal-table")
    browser.shot("results-bayesian-recommendation.png", selector="#recommendation")

    # The fixed-horizon view is one click away, with p-values again.
    page.click("#toggle-analysis a[data-value=fixed]")
    page.wait_for_url("**analysis=fixed**")
    assert "p-value" in (page.locator("#goal-table thead").text_content() or "")
    page.click("#toggle-analysis a[data-value=bayesian]")
    page.wait_for_url("**analysis=bayesian**")
    assert "Risk" in (page.locator("#goal-table thead").text_content() or "")

    # Slices by country: DE's lift is five times the others', and only DE is flagged.
    page.select_option("#slice-attr", "country")
    page.wait_for_function("() => document.querySelector('#heterogeneity') !== null")
    flags = page.locator("#slice-table td.heterogeneity").evaluate_all(
        "cells => cells.map(c => [c.closest('tr').dataset.slice, c.dataset.heterogeneity])")
    assert {value for value, word in flags if word == "differs"} == {"DE"}
    assert {word for value, word in flags if value != "DE"} == {"noise"}
    line = page.inner_text("#heterogeneity li[data-variation=treatment]")
    assert "the effect in DE differs from the rest" in line and "Cochran's Q" in line
    browser.shot("results-heterogeneity.png", selector="#slices")
    # Platform: the same lift everywhere, nothing flagged.
    page.select_option("#slice-attr", "platform")
    page.wait_for_url("**slice=platform**")
    page.wait_for_function("() => document.querySelector('#heterogeneity li[data-significant]') !== null")
    assert page.get_attribute("#heterogeneity li[data-variation=treatment]", "data-significant") == "no"
    assert "noise" in page.inner_text("#heterogeneity")
    assert browser.errors == []
