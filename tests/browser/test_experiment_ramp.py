"""Ramping an experiment from its page in headless Chromium against a live server, with the
served variants read over HTTP through OFREP before and after each step.

10% -> 50% now: the page says phase 1 continues before it is confirmed, and every unit that was
in keeps its variant. 100% on a schedule: planned, shown on the page, applied by the scheduler's
task. A new split: the page says phase 2 starts, and it does. Screenshots for docs/reading-results.md.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from experiments.models import Experiment, Phase, RampStep
from experiments.tasks import experiment_ramp_steps_task
from tests.browser.chromium import chromium
from tests.browser.test_results_pages import Page
from tests.integration.pages import factories
from tests.integration.serving.conftest import serving_state  # noqa: F401 - a fixture (SDK state per test)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNITS = 300


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    with chromium(monkeypatch) as launched:
        context = launched.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield Page(page, live_server.url)


def _served(base: str, key: str, flag: str) -> dict[str, str]:
    """Unit -> variant of the units OFREP places in the experiment (reason SPLIT), over HTTP."""
    placed: dict[str, str] = {}
    for i in range(UNITS):
        request = urllib.request.Request(
            f"{base}/ofrep/v1/evaluate/flags/{flag}", method="POST",
            data=json.dumps({"context": {"targetingKey": f"user-{i}"}}).encode(),
            headers={"Content-Type": "application/json", "X-API-Key": key},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        if body["reason"] == "SPLIT":
            placed[f"user-{i}"] = body["variant"]
    return placed


def _phases(experiment: Experiment) -> list[int]:
    return list(Phase.objects.filter(experiment=experiment).values_list("number", flat=True))


def test_browser__ramp_from_the_experiment_page__phase_kept_units_kept_then_new_split(browser: Page) -> None:
    experiment = factories.create_experiment(factories.flat_plan("ramped-checkout", extra={"coverage": 0.1}))
    client_key = experiment.environment.client_key
    flag = experiment.flag.key
    factories.staff_user("pm")
    browser.login("pm")
    page = browser.page
    before = _served(browser.base, client_key, flag)
    assert 0.04 * UNITS < len(before) < 0.16 * UNITS

    # 10% -> 50% now: described, confirmed, same phase, nobody moves.
    browser.go(f"/experiments/{experiment.key}/")
    page.click("#ramp-experiment")
    page.wait_for_url(f"**/experiments/{experiment.key}/ramp")
    page.fill("input[name=now-coverage]", "50")
    page.click("#ramp-now-review")
    page.wait_for_selector("#ramp-confirm")
    assert page.get_attribute("#ramp-confirm", "data-new-phase") == "false"
    assert "Phase 1 continues" in page.inner_text("#ramp-confirm")
    assert Experiment.objects.get(pk=experiment.pk).coverage == 0.1
    browser.shot("experiment-ramp.png")
    page.click("#ramp-confirm-button")
    page.wait_for_url(f"**/experiments/{experiment.key}/")
    assert "phase 1 continues" in page.inner_text("ul.messages")
    assert page.inner_text("#coverage").startswith("50%")
    after = _served(browser.base, client_key, flag)
    assert 0.4 * UNITS < len(after) < 0.6 * UNITS
    assert {unit: after.get(unit) for unit in before} == before
    assert _phases(experiment) == [1]

    # 100% on a schedule: planned on the page, applied by the scheduler's task when due.
    page.click("#ramp-experiment")
    start = (timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page.fill("input[name=schedule-percents]", "100")
    page.fill("input[name=schedule-start]", start)
    page.click("#ramp-schedule-review")
    page.wait_for_selector("#ramp-confirm")
    assert "Phase 1 continues at every step" in page.inner_text("#ramp-confirm")
    page.click("#ramp-confirm-button")
    page.wait_for_url(f"**/experiments/{experiment.key}/")
    assert "planned: 100% on" in page.inner_text("#planned-steps")
    RampStep.objects.filter(experiment=experiment).update(apply_at=timezone.now() - timedelta(minutes=1))
    assert experiment_ramp_steps_task() == {"applied": 1, "skipped": 0}
    browser.go(f"/experiments/{experiment.key}/ramp")
    assert "coverage 100%" in page.inner_text("#ramp-now-state")
    assert page.locator("#ramp-steps tr[data-status=applied]").count() == 1
    full = _served(browser.base, client_key, flag)
    assert len(full) == UNITS and {unit: full[unit] for unit in after} == after
    assert _phases(experiment) == [1]

    # A new split: the page says a new phase starts before it does.
    page.fill("input[name=now-weights]", "30/70")
    page.click("#ramp-now-review")
    page.wait_for_selector("#ramp-confirm")
    assert page.get_attribute("#ramp-confirm", "data-new-phase") == "true"
    assert "Phase 2 starts" in page.inner_text("#ramp-confirm")
    browser.shot("experiment-ramp-new-phase.png", selector="#ramp-confirm")
    page.click("#ramp-confirm-button")
    page.wait_for_url(f"**/experiments/{experiment.key}/")
    assert _phases(experiment) == [1, 2]
    assert browser.errors == []
