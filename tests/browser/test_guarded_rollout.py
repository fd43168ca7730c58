"""The flag page of a guarded rollout in headless Chromium against a live server: one rolled
back by harm (its reason, each guardrail's interval at every readout checked, the decisions) and
one under way (its share, the next step and when)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from audit.types import Actor
from experiments import services as experiment_services
from flags import services as flag_services
from flags.models import Flag
from guarded import services
from guarded.models import GuardedRollout
from tests.browser.chromium import chromium
from tests.browser.test_results_pages import Page
from tests.integration.guarded.traffic import send_traffic
from tests.integration.pages import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ACTOR = Actor(label="pm", via="system")


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    with chromium(monkeypatch) as launched:
        context = launched.new_context(viewport={"width": 1280, "height": 1400})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield Page(page, live_server.url)


def _guarded(env_key: str, steps: list[dict[str, Any]]) -> GuardedRollout:
    env = factories.environment(env_key)
    flag = Flag.objects.filter(key="checkout").first() or flag_services.flag_create(
        actor=ACTOR, key="checkout", value_type="string",
        variants=[{"key": "control", "value": "old"}, {"key": "treatment", "value": "new"}])
    flag_services.flag_state_update(actor=ACTOR, flag=flag, environment=env, enabled=True)
    rule = flag_services.flag_rule_create(actor=ACTOR, flag=flag, environment=env, kind="rollout",
                                          variant="treatment", coverage=0.0)
    return services.guarded_rollout_start(actor=ACTOR, flag=flag, environment=env, rule_id=rule.uid, steps=steps,
                                          guardrails=[{"metric": "purchase", "direction": "higher"}], min_units=100)


def test_browser__flag_page_shows_guarded_rollouts(browser: Page) -> None:
    experiment_services.metric_create(actor=ACTOR, key="purchase", kind="conversion", event_name="purchase")
    harmed = _guarded("production", [{"percent": 50, "min_duration_seconds": 3600}, {"percent": 100}])
    production = harmed.environment
    send_traffic(production, units=300, prefix="a", rates=(0.3, 0.3), seed=31)
    experiment_services.readout_run(experiment_id=harmed.experiment_id)
    assert services.guarded_rollouts_check().outcomes[harmed.pk] == "waiting"
    send_traffic(production, units=1500, prefix="b", rates=(0.5, 0.1), seed=32)
    experiment_services.readout_run(experiment_id=harmed.experiment_id)
    assert services.guarded_rollouts_check().outcomes[harmed.pk] == "rolled_back"
    running = _guarded("staging", [{"percent": 5, "min_duration_seconds": 7200}, {"percent": 25,
                                                                                "min_duration_seconds": 7200},
                                   {"percent": 100}])
    factories.staff_user("pm")
    browser.login("pm")
    page = browser.page
    browser.go("/flags/checkout/")

    done = page.locator(f"[data-guarded-rollout='{harmed.pk}']")
    assert done.get_attribute("data-status") == "rolled_back"
    assert done.locator(".guarded-status").inner_text() == "Rolled back"
    assert done.locator(".guarded-percent").inner_text() == "0%"
    assert "purchase harmed" in done.locator(".guarded-reason").inner_text()
    rows = done.locator(".guardrail-track[data-metric='purchase'] .guardrail-intervals tbody tr")
    assert rows.count() == 2
    assert "harmed" in rows.nth(0).inner_text() and "harmed" not in rows.nth(1).inner_text()
    assert " to " in rows.nth(0).inner_text()
    assert done.locator(".guardrail-chart line").count() == 3  # the zero line and two intervals
    actions = done.locator(".guarded-decisions li")
    assert [actions.nth(i).get_attribute("data-action") for i in range(actions.count())] == [
        "started", "harmed", "rolled_back"]

    under_way = page.locator(f"[data-guarded-rollout='{running.pk}']")
    assert under_way.locator(".guarded-percent").inner_text() == "5%"
    next_text = under_way.locator(".guarded-next").inner_text()
    assert "Next: 25%" in next_text and running.step_started_at.strftime("%Y-%m-%d") in next_text
    assert under_way.locator(".guardrail-intervals").inner_text().count("No readout checked yet.") == 1
    browser.shot("guarded-rollout.png", selector="#env-production")
    assert browser.errors == []
