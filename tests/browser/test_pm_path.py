"""The product manager's path from start to finish in headless Chromium against a live server,
without typing JSON: attribute definitions in the admin, a flag whose rule is built in the
condition builder, a 20% rollout, an experiment on that flag through the guided creation, a
ramp from the experiment's page and a stop that ships. After each step the values served are
read through OFREP over real HTTP with the environment's SDK key.

Screenshots of the flag page and of the guided creation's split and review steps are written
to docs/img/ for docs/reading-results.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User

from base.models import Environment
from experiments.models import Experiment, Phase
from flags.models import AttributeDefinition, FlagState, Rule
from serving.usage import recorder as usage
from tests.browser.chromium import chromium
from tests.browser.test_results_pages import IMAGES
from tests.browser.test_targeting import PASSWORD, Browser, serving  # noqa: F401 - `serving` is a fixture
from tests.integration.pages import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FLAG = "one-page-checkout"
EXPERIMENT = "one-page-checkout-test"
# Who asks: pro customers in Germany (the rollout's audience, and the experiment's), free
# customers in Germany (only the experiment's) and free customers in the US (neither).
PRO_DE = [{"targetingKey": f"pro-de-{i}", "plan": "pro", "country": "DE"} for i in range(200)]
FREE_DE = [{"targetingKey": f"free-de-{i}", "plan": "free", "country": "DE"} for i in range(300)]
FREE_US = [{"targetingKey": f"free-us-{i}", "plan": "free", "country": "US"} for i in range(50)]


@dataclass(frozen=True)
class Served:
    value: Any
    variant: str
    reason: str


def served(base: str, key: str, contexts: list[dict[str, Any]]) -> dict[str, Served]:
    """Unit -> what OFREP serves it for the flag, one POST per unit over HTTP."""
    out = {}
    with requests.Session() as session:
        for context in contexts:
            response = session.post(f"{base}/ofrep/v1/evaluate/flags/{FLAG}", json={"context": context},
                                    headers={"X-API-Key": key}, timeout=10)
            assert response.status_code == 200, response.text
            body = response.json()
            out[context["targetingKey"]] = Served(body["value"], body.get("variant", ""), body["reason"])
    return out


def share(found: dict[str, Served], test: Any) -> float:
    return sum(1 for s in found.values() if test(s)) / len(found)


@pytest.fixture
def browser(live_server: Any, serving: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:  # noqa: F811
    with chromium(monkeypatch) as launched:
        context = launched.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield Browser(page, live_server.url)


def _shot(page: Any, name: str, selector: str | None = None) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    if selector:
        page.locator(selector).screenshot(path=str(IMAGES / name))
    else:
        page.screenshot(path=str(IMAGES / name), full_page=True)


def _row(builder: Any, index: int, attribute: str, operator: str) -> Any:
    builder.locator(".cb-add").click()
    row = builder.locator(".cb-rows > li").nth(index)
    row.locator(".cb-attribute").select_option(attribute)
    row.locator(".cb-operator").select_option(operator)
    return row


def test_browser__pm_path__attributes_builder_rollout_guided_experiment_ramp_ship__checked_through_ofrep(
    browser: Browser,
) -> None:
    User.objects.create_superuser("pm", "pm@example.com", PASSWORD)
    factories.environment()
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    page = browser.page
    base = browser.base

    # 1. Attribute definitions, in the admin: names, types and allowed values one per line.
    browser.login("pm", "/admin/flags/attributedefinition/add/")
    for name, values, description in (("plan", "free\npro\nbusiness", "Billing plan"),
                                      ("country", "DE\nFR\nNL\nUS", "Two-letter country code")):
        page.goto(f"{base}/admin/flags/attributedefinition/add/")
        page.fill("input[name=name]", name)
        page.select_option("select[name=type]", "string")
        page.fill("textarea[name=allowed_values]", values)
        page.fill("[name=description]", description)
        page.click("button[name=_save]")
        page.wait_for_url("**/admin/flags/attributedefinition/")
    assert {a.name: a.allowed_values for a in AttributeDefinition.objects.all()} == {
        "plan": ["free", "pro", "business"], "country": ["DE", "FR", "NL", "US"]}

    # 2. A new flag: switched off, it serves its off variant to everyone.
    page.goto(f"{base}/admin/flags/flag/add/")
    page.fill("input[name=key]", FLAG)
    page.click("button[name=_continue]")
    page.wait_for_url("**/admin/flags/flag/*/change/**")
    key = Environment.objects.get(key="production").client_key
    everyone = PRO_DE + FREE_DE + FREE_US
    assert {s.value for s in served(base, key, everyone).values()} == {False}

    # 3. A 20% rollout to pro and business customers, the condition built in rows.
    page.click("text=edit targeting")
    page.wait_for_url("**/admin/flags/flagstate/*/change/**")
    page.check("input[name=enabled]")
    page.click("text=Add another Rule")
    page.select_option("select[name=rules-0-kind]", "rollout")
    page.select_option("select[name=rules-0-variant]", "on")
    page.fill("input[name=rules-0-percentage]", "20")
    builder = page.locator("[data-condition-builder]:has(textarea[name=rules-0-condition])")
    row = _row(builder, 0, "plan", "$in")
    row.locator("input[type=checkbox][value=pro]").check()
    row.locator("input[type=checkbox][value=business]").check()
    assert builder.locator(".cb-warnings li").count() == 0
    page.click("button[name=_continue]")
    page.wait_for_selector("text=serves on to 20% of users by id when plan is one of pro, business")
    assert page.locator(".fall-through-warnings").count() == 0
    assert Rule.objects.get(state__flag__key=FLAG).condition == {"plan": {"$in": ["pro", "business"]}}
    rollout = served(base, key, everyone)
    rolled_out = {unit for unit, s in rollout.items() if s.value is True}
    assert rolled_out <= {c["targetingKey"] for c in PRO_DE}
    assert len(rolled_out) / len(PRO_DE) == pytest.approx(0.2, abs=0.08)

    # 4. An experiment on the same flag through the guided creation: 10% of German and French
    #    users, the targeting built in rows and read back in words on the review.
    page.goto(f"{base}/experiments/new/basics/?restart=1")
    page.fill("input[name=key]", EXPERIMENT)
    page.fill("input[name=name]", "One-page checkout")
    page.fill("textarea[name=hypothesis]", "A one-page checkout lifts purchases by 5% because it is shorter.")
    page.select_option("select[name=environment]", "production")
    page.click("#wizard-next")
    page.wait_for_url("**/new/flag/")
    page.select_option("select[name=flag]", FLAG)
    page.click("#wizard-next")
    page.wait_for_url("**/new/split/")
    page.select_option("select[name=control]", "off")
    page.check("input[name=treatments][value=on]")
    page.fill("input[name=coverage]", "10")
    builder = page.locator("[data-condition-builder]")
    row = _row(builder, 0, "country", "$in")
    row.locator("input[type=checkbox][value=DE]").check()
    row.locator("input[type=checkbox][value=FR]").check()
    assert builder.locator(".cb-warnings li").count() == 0
    _shot(page, "wizard-split.png", "#wizard-form")
    page.click("#wizard-next")
    page.wait_for_url("**/new/metrics/")
    page.select_option("select[name=primary]", "purchase")
    page.click("#wizard-next")
    page.wait_for_url("**/new/power/")
    page.fill("input[name=mde]", "5")
    page.fill("input[name=baseline]", "12")
    page.fill("input[name=daily_users]", "40000")
    page.click("#wizard-next")
    page.wait_for_url("**/new/review/")
    assert page.inner_text("#review-targeting").startswith("Country is one of DE, FR")
    assert "$in" not in page.inner_text("#review")
    _shot(page, "wizard-review.png")
    page.click("#create-start")
    page.wait_for_url(f"**/experiments/{EXPERIMENT}/")
    assert page.inner_text("#status-badge") == "Running"
    assert page.inner_text("#coverage").startswith("10%")
    experiment = Experiment.objects.get(key=EXPERIMENT)
    assert experiment.condition == {"country": {"$in": ["DE", "FR"]}}

    ten = served(base, key, everyone)
    # The rollout comes first: the same pro customers keep getting the variant from it. OFREP
    # says SPLIT for both (the hash decides), so the experiment's units are the others split.
    assert {unit for unit in rolled_out if ten[unit].value is True} == rolled_out
    in_ten = {unit: s.variant for unit, s in ten.items() if s.reason == "SPLIT" and unit not in rolled_out}
    free_de = {c["targetingKey"] for c in FREE_DE}
    assert share({u: ten[u] for u in free_de}, lambda s: s.reason == "SPLIT") == pytest.approx(0.1, abs=0.06)
    assert set(in_ten.values()) == {"off", "on"}
    assert all(ten[unit].value is (variant == "on") for unit, variant in in_ten.items())
    assert {ten[c["targetingKey"]].value for c in FREE_US} == {False}
    assert all(ten[c["targetingKey"]].reason != "SPLIT" for c in FREE_US)

    # The flag page reads the flag's rules in words, with its last evaluation (noted by the
    # server as it answered, written here at once instead of by its background flush).
    usage.flush()
    page.goto(f"{base}/flags/{FLAG}/")
    rules = page.inner_text("#env-production")
    assert "Serves on to 20% of users by id when plan is one of pro, business" in rules
    assert "An experiment split of 10% of users: off 50%, on 50% (by id) when country is one of DE, FR" in rules
    assert page.inner_text("#last-evaluated") != "never"
    assert "$in" not in page.inner_text("main")
    changes = page.inner_text("main")
    assert "Rule added in production: serves on to 20% of users by id when plan is one of pro, business" in changes
    _shot(page, "flag-page.png")

    # 5. Ramp from the experiment's page to 50% now: the phase continues and nobody moves.
    page.goto(f"{base}/experiments/{EXPERIMENT}/")
    page.click("#ramp-experiment")
    page.wait_for_url(f"**/experiments/{EXPERIMENT}/ramp")
    page.fill("input[name=now-coverage]", "50")
    page.click("#ramp-now-review")
    page.wait_for_selector("#ramp-confirm")
    assert "Phase 1 continues" in page.inner_text("#ramp-confirm")
    page.click("#ramp-confirm-button")
    page.wait_for_url(f"**/experiments/{EXPERIMENT}/")
    assert page.inner_text("#coverage").startswith("50%")
    fifty = served(base, key, everyone)
    in_fifty = {unit: s.variant for unit, s in fifty.items() if s.reason == "SPLIT" and unit not in rolled_out}
    assert {unit: in_fifty.get(unit) for unit in in_ten} == in_ten
    assert share({u: fifty[u] for u in free_de}, lambda s: s.reason == "SPLIT") == pytest.approx(0.5, abs=0.1)
    assert {unit for unit in rolled_out if fifty[unit].value is True} == rolled_out
    assert {fifty[c["targetingKey"]].value for c in FREE_US} == {False}
    assert list(Phase.objects.filter(experiment=experiment).values_list("number", flat=True)) == [1]

    # 6. Stop and ship `on`: the split is gone and everyone gets `on`.
    page.click("#stop-experiment")
    page.wait_for_url(f"**/experiments/{EXPERIMENT}/stop")
    page.check("input[name=decision][value=ship]")
    page.select_option("select[name=variation]", "on")
    page.fill("textarea[name=note]", "Ship to everyone.")
    page.click("#confirm-stop")
    page.wait_for_url(f"**/experiments/{EXPERIMENT}/")
    assert page.inner_text("#status-badge") == "Stopped"
    shipped = served(base, key, everyone)
    assert {s.value for s in shipped.values()} == {True}
    # Only the rollout still picks by hash; it is moot now, and the flag page says so.
    assert {unit for unit, s in shipped.items() if s.reason == "SPLIT"} == rolled_out
    state = FlagState.objects.get(flag__key=FLAG, environment__key="production")
    assert state.default_variant == "on"
    page.goto(f"{base}/flags/{FLAG}/")
    assert page.locator("#env-production .fall-through-warning").count() == 1
    assert browser.errors == [], browser.errors
