"""Result pages and the PM workflow in headless Chromium against a live server.

A PM creates and starts an experiment through the guided flow; the results page of a
seeded experiment renders its table, forest plot and trend chart without console errors;
the analysis, CUPED and difference toggles switch the table, forest plot, trend and CSV;
the CSV and JSON downloads parse; a seeded sample ratio
mismatch shows its banner; the kill switch asks for confirmation. Screenshots of the main
pages are written to docs/img/ for docs/reading-results.md.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from experiments.models import Experiment
from flags.models import FlagState
from tests.browser.chromium import chromium
from tests.integration.pages import factories

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
PASSWORD = "pw-12345-x"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Page:
    """A Playwright page that records console errors and uncaught exceptions."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _console(self, message: Any) -> None:
        # The admin's login page (not ours) has no favicon; the browser asks for one anyway.
        if message.type == "error" and not str(message.location.get("url", "")).endswith("/favicon.ico"):
            self.errors.append(f"{message.text} at {message.location.get('url')}")

    def login(self, username: str) -> None:
        self.page.goto(f"{self.base}/admin/login/?next=/experiments/")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/experiments/")

    def go(self, path: str) -> Any:
        response = self.page.goto(f"{self.base}{path}")
        assert response is not None and response.ok, (path, response and response.status)
        return response

    def shot(self, name: str, *, selector: str | None = None) -> None:
        IMAGES.mkdir(parents=True, exist_ok=True)
        target = self.page.locator(selector) if selector else self.page
        if selector:
            target.screenshot(path=str(IMAGES / name))
        else:
            self.page.screenshot(path=str(IMAGES / name), full_page=True)


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    with chromium(monkeypatch) as launched:
        context = launched.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield Page(page, live_server.url)


def test_browser__pm_creates_and_starts_an_experiment_through_the_guided_flow(browser: Page) -> None:
    factories.environment()
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion"),
                              factories.MetricPlan("errors", "count", direction="lower")])
    factories.staff_user("pm")
    browser.login("pm")
    page = browser.page
    page.click("#new-experiment")
    page.wait_for_url("**/experiments/new/basics/**")
    page.fill("input[name=key]", "green-buy-button")
    page.fill("input[name=name]", "Green buy button")
    page.fill("textarea[name=hypothesis]", "A green buy button lifts purchases by 5% because it stands out.")
    page.fill("input[name=owner]", "pm")
    page.select_option("select[name=environment]", "production")
    page.click("#wizard-next")
    page.wait_for_url("**/new/flag/")
    page.fill("input[name=new_flag]", "green-buy-button")
    page.click("#wizard-next")
    page.wait_for_url("**/new/split/")
    page.select_option("select[name=control]", "off")
    page.check("input[name=treatments][value=on]")
    page.fill("input[name=weights]", "50/50")
    page.click("#wizard-next")
    page.wait_for_url("**/new/metrics/")
    page.select_option("select[name=primary]", "purchase")
    page.check("input[name=guardrails][value=errors]")
    page.click("#wizard-next")
    page.wait_for_url("**/new/power/")
    page.fill("input[name=mde]", "5")
    page.fill("input[name=baseline]", "12")
    page.fill("input[name=daily_users]", "3000")
    # The estimate appears on the step itself, before the review; two months is too long.
    page.click("#wizard-estimate")
    page.wait_for_selector("#power-estimate")
    assert "/new/power/" in page.url
    warning = page.inner_text("#underpowered")
    assert "Underpowered" in warning and "larger lift" in warning and "CUPED" in warning
    browser.shot("wizard-underpowered.png", selector="#wizard-form")
    page.fill("input[name=daily_users]", "6000")
    page.click("#wizard-estimate")
    page.wait_for_load_state()
    planned = page.inner_text("#plan-users")
    assert "users" in page.inner_text("#power-estimate") and f"tuned for these {planned} users" in page.inner_text(
        "#power-estimate")
    assert page.locator("#underpowered").count() == 0
    browser.shot("wizard-power.png")
    page.click("#wizard-next")
    page.wait_for_url("**/new/review/")
    assert "Green buy button" in page.inner_text("#review")
    # One number of users on every step: the plan, the review and the tuning of the sequential test.
    assert planned in page.inner_text("#review-plan") and f"tuned for {planned} users" in page.inner_text(
        "#review-analysis")
    page.click("#create-start")
    page.wait_for_url("**/experiments/green-buy-button/")
    assert page.inner_text("#status-badge") == "Running"
    assert page.inner_text("#sequential-tuning") == planned
    experiment = Experiment.objects.get(key="green-buy-button")
    assert experiment.status == Experiment.Status.RUNNING
    assert FlagState.objects.get(flag__key="green-buy-button").enabled
    assert browser.errors == []


def test_browser__results_page__table_charts_toggles_exports(browser: Page, tmp_path: Path) -> None:
    winner = factories.seed(factories.winner_plan(sequential=False, target_mde=15.0))
    factories.seed(factories.srm_plan())
    factories.seed(factories.guardrail_plan())
    factories.seed(factories.flat_plan())
    factories.staff_user("analyst")
    browser.login("analyst")
    page = browser.page
    assert page.locator("#experiment-table tbody tr").count() == 4
    browser.shot("experiment-list.png")

    browser.go(f"/experiments/{winner.key}/")
    for selector in ("#goal-table", "#guardrail-table", "#forest svg.forest-plot", "#trend svg.trend-chart",
                     "#users svg.users-chart", "#recommendation", "#power", "#slices"):
        assert page.locator(selector).count() >= 1, selector
        assert page.locator(selector).first.is_visible(), selector
    assert page.locator("#trend svg polygon.band").count() == 1
    assert page.locator("#goal-table tr.result-row").count() == 3
    assert page.get_attribute("#recommendation", "data-verdict") == "ship"
    browser.shot("results-page.png")
    browser.shot("results-recommendation.png", selector="#recommendation")
    browser.shot("results-forest.png", selector="#forest")
    browser.shot("results-trend.png", selector="#trend")
    browser.shot("results-power.png", selector="#power")

    # Tooltips: hovering a column header shows its explanation.
    page.hover("#goal-table th .tip >> nth=5")
    browser.shot("results-table.png", selector="#goal-table")

    # CUPED toggle: numbers change, the page says which analysis it shows.
    purchase = "#goal-table tr[data-metric=purchase] td.interval"
    with_cuped = page.inner_text(purchase)
    page.click("#toggle-cuped a[data-value=off]")
    page.wait_for_url("**cuped=off**")
    assert "unadjusted" in page.inner_text("#toggles")
    without_cuped = page.inner_text(purchase)
    assert with_cuped != without_cuped
    page.click("#toggle-cuped a[data-value=on]")
    page.wait_for_url("**cuped=on**")
    assert page.inner_text(purchase) == with_cuped
    # Only stored difference types are offered.
    assert page.locator("#toggle-diff a[data-value=relative]").count() == 1

    # Slice drill-down: pick a dimension and metric.
    page.select_option("#slice-attr", "platform")
    page.wait_for_url("**slice=platform**")
    assert sorted(page.locator("#slice-table tr[data-slice]").evaluate_all(
        "rows => [...new Set(rows.map(r => r.dataset.slice))]")) == ["android", "ios", "web"]
    assert page.locator("#slice-caveat").is_visible()
    browser.shot("results-slices.png", selector="#slices")

    with page.expect_download() as csv_download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert {r["metric"] for r in rows} == {"purchase", "revenue", "ctr", "errors"}
    assert all(r["experiment"] == winner.key for r in rows)
    with page.expect_download() as json_download:
        page.click("#export-json")
    body = json.loads(Path(json_download.value.path()).read_text())
    assert body["experiment"] == winner.key and len(body["metrics"]) == 4 and body["slices"]
    assert browser.errors == []


def test_browser__results_page__analysis_cuped_and_difference_toggles(browser: Page) -> None:
    winner = factories.seed(factories.winner_plan(history=4))  # sequential, CUPED on, relative
    factories.staff_user("analyst")
    browser.login("analyst")
    page = browser.page
    browser.go(f"/experiments/{winner.key}/")
    purchase = "#goal-table tr[data-metric=purchase] td.interval"
    verdict = page.get_attribute("#recommendation", "data-verdict")
    assert "sequential (always-valid), CUPED-adjusted" in page.inner_text("#toggles")
    seen = {"sequential+cuped": (page.inner_text(purchase), page.inner_html("#forest"))}

    # Sequential without CUPED: the table and the forest plot change, the trend stays complete.
    page.click("#toggle-cuped a[data-value=off]")
    page.wait_for_url("**cuped=off**")
    assert "sequential (always-valid), unadjusted" in page.inner_text("#toggles")
    seen["sequential"] = (page.inner_text(purchase), page.inner_html("#forest"))
    assert page.locator("#trend-note").count() == 0
    assert page.locator("#trend svg polygon.band").count() == 1

    # Absolute differences: no percent signs, one forest plot per metric, the trend in units.
    page.click("#toggle-diff a[data-value=absolute]")
    page.wait_for_url("**diff=absolute**")
    absolute = page.inner_text(purchase)
    assert "%" not in absolute and absolute.count(" pp") == 2  # a rate's difference in percentage points
    browser.shot("results-table-absolute.png", selector="#goal-table")
    assert page.locator("#forest svg.forest-plot").count() == 4
    assert "Cumulative difference" in page.inner_html("#trend")
    seen["sequential+absolute"] = (absolute, page.inner_html("#forest"))

    # Fixed horizon, still absolute and without CUPED; the recommendation does not move.
    page.click("#toggle-analysis a[data-value=fixed]")
    page.wait_for_url("**analysis=fixed**")
    assert "fixed-horizon, unadjusted" in page.inner_text("#toggles")
    assert "not the experiment's configured analysis" in page.inner_text("#toggles")
    seen["fixed+absolute"] = (page.inner_text(purchase), page.inner_html("#forest"))
    assert page.get_attribute("#recommendation", "data-verdict") == verdict
    intervals = [cell for cell, _ in seen.values()]
    forests = [svg for _, svg in seen.values()]
    assert len(set(intervals)) == len(intervals) and len(set(forests)) == len(forests)

    # The CSV downloaded from this view marks it.
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    selected = {(r["analysis"], r["difference_type"]) for r in rows if r["selected"] == "True"}
    assert selected == {("fixed", "absolute")}
    assert browser.errors == []


def test_browser__srm_experiment__banner_explains_the_mismatch(browser: Page) -> None:
    experiment = factories.seed(factories.srm_plan())
    factories.staff_user("analyst")
    browser.login("analyst")
    browser.go(f"/experiments/{experiment.key}/")
    page = browser.page
    banner = page.locator("#srm-banner")
    assert banner.is_visible()
    assert "Sample ratio mismatch" in banner.inner_text()
    assert "less than 1 in 1,000" in banner.inner_text()
    assert page.get_attribute("#recommendation", "data-verdict") == "inconclusive"
    browser.shot("srm-banner.png", selector="#srm-banner")
    browser.shot("srm-users.png", selector="#users")
    assert browser.errors == []


def test_browser__flag_page_kill_switch_asks_then_turns_off(browser: Page) -> None:
    winner = factories.seed(factories.winner_plan(history=3))
    factories.staff_user("pm")
    browser.login("pm")
    browser.go(f"/flags/{winner.flag.key}/")
    page = browser.page
    assert winner.key in page.inner_text("#usage-experiments")
    assert page.inner_text("#last-evaluated") == "never"
    page.click(".kill-switch")
    page.wait_for_url("**/switch")
    browser.shot("kill-switch-confirm.png")
    assert FlagState.objects.get(flag=winner.flag, environment=winner.environment).enabled
    page.click("#confirm-switch")
    page.wait_for_url(f"**/flags/{winner.flag.key}/")
    assert "is now OFF" in page.inner_text(".messages")
    assert not FlagState.objects.get(flag=winner.flag, environment=winner.environment).enabled
    browser.go(f"/experiments/{winner.key}/")
    assert page.locator("#flag-off-banner").is_visible()
    assert browser.errors == []
