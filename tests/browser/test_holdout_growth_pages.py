"""The holdout result page and the growth page in headless Chromium, on the seeded growth story
(a holdout, two shipped experiments, one running, the north star): the holdout's table and its
toggles, the growth page's level chart, shipped lifts raw and corrected, the sum beside the
measured lift with its words, the running experiment, and the way between the two pages; no
console errors. Screenshots go to docs/img/ for docs/reading-results.md."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from experiments.management.commands.seed_growth import HOLDOUT, seed_growth
from tests.browser.test_results_pages import PASSWORD, Page, browser  # noqa: F401 - the fixture
from tests.integration.pages import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def growth_story(db: Any) -> None:
    seed_growth(environment=factories.environment(), users=3000)
    user = User.objects.create_user("grower", "grower@example.com", PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        codename__in=["view_experiment", "view_holdout", "change_holdout", "view_metric"]))


def test_browser__holdout_page__held_out_against_everyone_else_with_toggles(
    browser: Page, growth_story: None  # noqa: F811
) -> None:
    browser.login("grower")
    page = browser.page
    browser.go(f"/holdouts/{HOLDOUT}/production/")
    assert page.inner_text("#holdout-status") == "Holding"
    assert "everyone else against the held-out units" in page.inner_text("#holdout-explainer")
    row = "#holdout-table tr[data-metric=orders][data-variation=released]"
    assert page.locator(row).count() == 1
    assert page.inner_text(f"{row} td.estimate").startswith(("+", "-"))
    browser.shot("holdout-results.png")
    page.click("#toggle-analysis a[data-value=sequential]")
    page.wait_for_url("**analysis=sequential**")
    assert page.locator(row).count() == 1
    page.click("#refresh")
    page.wait_for_url(f"**/holdouts/{HOLDOUT}/production/")
    assert page.locator("#pending").count() == 1
    assert not browser.errors, browser.errors


def test_browser__growth_page__sum_beside_measured_running_and_link_to_the_holdout(
    browser: Page, growth_story: None  # noqa: F811
) -> None:
    browser.login("grower")
    page = browser.page
    browser.go("/holdouts/growth/production/")
    assert "orders" in page.inner_text("#north-star")
    assert page.locator("#level-chart svg polyline.level-line").count() == 1
    assert page.locator("#shipped-table tr.shipped-row").count() == 2
    first = "#shipped-table tr[data-experiment=onboarding-tour]"
    assert page.inner_text(f"{first} td.lift").startswith(("+", "-"))
    assert page.inner_text(f"{first} td.corrected").startswith(("+", "-"))
    assert "sum of shipped lifts" in page.inner_text("#naive-sum").lower()
    assert "The shipped lifts add up to" in page.inner_text("#gap-words")
    assert page.locator("#running-table tr[data-experiment=smart-search]").count() == 1
    browser.shot("growth.png")
    page.click(f"#measured a[href='/holdouts/{HOLDOUT}/production/']")
    page.wait_for_url(f"**/holdouts/{HOLDOUT}/production/")
    assert not browser.errors, browser.errors
