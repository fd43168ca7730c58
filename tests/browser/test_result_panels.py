"""The trend, slices and power panels of a results page update in place in Chromium: choosing a
slice or a trend metric, or recalculating the power panel, neither reloads nor scrolls the page;
the address bar records the choice, and loading that address shows the same view. Without
JavaScript the same forms load the whole page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from experiments.models import Experiment
from tests.browser.chromium import chromium
from tests.browser.test_results_pages import Page
from tests.integration.pages import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def launched(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    with chromium(monkeypatch) as browser:
        yield browser, live_server.url


@pytest.fixture
def winner(db: Any) -> Experiment:
    experiment = factories.seed(factories.winner_plan(sequential=False, target_mde=15.0))
    factories.staff_user("analyst")
    return experiment


def _open(launched: tuple[Any, str], path: str, *, javascript: bool = True) -> Page:
    browser, base = launched
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = Page(context.new_page(), base)
    page.login("analyst")  # the admin's login page needs script
    if not javascript:
        state = context.storage_state()
        context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False,
                                      storage_state=state)
        page = Page(context.new_page(), base)
    page.page.set_default_timeout(30_000)
    page.go(path)
    return page


def _slices_shown(page: Any) -> list[str]:
    return sorted(set(page.locator("#slice-table tr[data-slice]").evaluate_all(
        "rows => rows.map(r => r.dataset.slice)")))


def test_browser__panels__update_in_place_and_the_address_reproduces_the_view(
    launched: tuple[Any, str], winner: Experiment
) -> None:
    browser = _open(launched, f"/experiments/{winner.key}/")
    page = browser.page
    # A full load or a navigation would drop this mark.
    page.evaluate("window.__samePage = true")

    page.locator("#slices").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 200)")
    top = page.evaluate("window.scrollY")
    assert top > 1000
    page.focus("#slice-attr")
    page.select_option("#slice-attr", "platform")
    page.wait_for_function("() => document.querySelector('#slice-table tr[data-slice=ios]') !== null")
    assert _slices_shown(page) == ["android", "ios", "web"]
    assert page.evaluate("window.__samePage") is True
    # Where it was; a shorter page can only bring the bottom up to the window's.
    bottom = page.evaluate("document.documentElement.scrollHeight - window.innerHeight")
    assert abs(page.evaluate("window.scrollY") - min(top, bottom)) <= 2
    assert "slice=platform" in page.url
    assert page.evaluate("document.activeElement.id") == "slice-attr"  # keyboard users stay where they were

    page.select_option("#slice-metric", "revenue")
    page.wait_for_function("() => document.querySelector('#slices svg').getAttribute('aria-label') === "
                           "'revenue by platform'")

    page.select_option("#trend-metric", "ctr")
    page.wait_for_function("() => document.querySelector('#trend svg').getAttribute('aria-label')"
                           ".includes('of ctr')")
    assert page.evaluate("window.__samePage") is True

    page.fill("#mde", "3")
    page.click("#power button[type=submit]")
    page.wait_for_function("() => document.querySelector('#power .stat:nth-child(2) .value').textContent === '3.0%'")
    assert page.evaluate("window.__samePage") is True
    # The recommendation reads the target: it came back with the power panel.
    assert page.locator("#recommendation").count() == 1

    for part in ("slice=platform", "slice_metric=revenue", "trend=ctr", "mde=3"):
        assert part in page.url, (part, page.url)
    # The toggles keep the rest of the view.
    cuped_off = page.get_attribute("#toggle-cuped a[data-value=off]", "href") or ""
    for part in ("cuped=off", "slice=platform", "trend=ctr", "mde=3"):
        assert part in cuped_off, (part, cuped_off)

    # The address reproduces the view.
    page.goto(page.url)
    assert page.evaluate("window.__samePage") is None
    assert page.input_value("#slice-attr") == "platform" and page.input_value("#slice-metric") == "revenue"
    assert _slices_shown(page) == ["android", "ios", "web"]
    assert page.input_value("#trend-metric") == "ctr"
    assert "of ctr" in (page.get_attribute("#trend svg", "aria-label") or "")
    assert page.input_value("#mde") == "3"
    assert page.inner_text("#power .stat:nth-child(2) .value") == "3.0%"
    assert browser.errors == []


def test_browser__panels_without_javascript__the_forms_load_the_page(
    launched: tuple[Any, str], winner: Experiment
) -> None:
    browser = _open(launched, f"/experiments/{winner.key}/?cuped=off", javascript=False)
    page = browser.page

    page.select_option("#slice-attr", "platform")
    page.click("#slices button:text-is('Show')")
    page.wait_for_url("**slice=platform**")
    assert "cuped=off" in page.url
    assert _slices_shown(page) == ["android", "ios", "web"]

    page.fill("#mde", "3")
    page.click("#power button[type=submit]")
    page.wait_for_url("**mde=3**")
    assert "slice=platform" in page.url
    assert page.inner_text("#power .stat:nth-child(2) .value") == "3.0%"
