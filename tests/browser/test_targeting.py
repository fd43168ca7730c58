"""Targeting as a product manager builds it in headless Chromium, checked through OFREP over
real HTTP against the live server: a new flag with a 20% rollout to a segment serves its
variant to a fifth of the segment and to nobody else; a condition built in the condition
builder without typing JSON is saved and served; JSON and rows follow each other, as the
Python model of the builder reads and writes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User

from audit.types import Actor
from base.models import Environment
from flags import attributes, services
from flags.engine.builder import builder_from_condition, builder_to_document
from flags.models import FlagState, Rule, Segment
from serving.ratelimit import limiter
from serving.snapshots import store
from serving.usage import recorder as usage
from tests.browser.chromium import chromium
from tests.integration.pages import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pm-password-123"
EU = ["AT", "BE", "DE", "ES", "FR", "IE", "IT", "NL", "PL", "SE"]


class Browser:
    """A Playwright page on the live server that records console errors and uncaught exceptions."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _console(self, message: Any) -> None:
        if message.type == "error" and not str(message.location.get("url", "")).endswith("/favicon.ico"):
            self.errors.append(f"{message.text} at {message.location.get('url')}")

    def login(self, username: str, then: str) -> None:
        self.page.goto(f"{self.base}/admin/login/?next={then}")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"**{then}")


@pytest.fixture
def serving(settings: Any, tmp_path: Path) -> Iterator[None]:
    """The SDK edge of the live server: fresh caches, every change seen at the next request, no
    rate limit, no background flushing."""
    settings.SNAPSHOT_DIR = tmp_path / "serving"
    settings.SNAPSHOT_CHECK_INTERVAL = 0.0
    settings.EXPOSURE_FLUSH_INTERVAL = 0.0
    settings.EVALUATION_FLUSH_INTERVAL = 0.0
    settings.RATE_LIMIT_PER_SECOND = 0.0
    store.reset()
    limiter.reset()
    usage.reset()
    yield
    store.reset()
    limiter.reset()
    usage.reset()


@pytest.fixture
def browser(live_server: Any, serving: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    with chromium(monkeypatch) as launched:
        context = launched.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield Browser(page, live_server.url)


def ofrep_values(base: str, key: str, flag: str, contexts: list[dict[str, Any]]) -> list[Any]:
    """The value OFREP serves each context, one request each, over HTTP."""
    values = []
    with requests.Session() as session:
        for context in contexts:
            response = session.post(f"{base}/ofrep/v1/evaluate/flags/{flag}", json={"context": context},
                                    headers={"X-API-Key": key}, timeout=10)
            assert response.status_code == 200, response.text
            values.append(response.json()["value"])
    return values


def users(country: str, count: int) -> list[dict[str, Any]]:
    return [{"targetingKey": f"{country}-user-{i}", "country": country} for i in range(count)]


def test_admin__pm_builds_a_20_percent_rollout_to_eu_customers__ofrep_serves_true_to_a_fifth_of_eu_only(
    browser: Browser,
) -> None:
    User.objects.create_superuser("pm", "pm@example.com", PASSWORD)
    production = services.environment_create(actor=Actor.system(), key="production")
    services.segment_create(actor=Actor.system(), key="eu-customers", name="EU customers",
                            condition={"country": {"$in": EU}})
    page = browser.page
    browser.login("pm", "/admin/flags/flag/add/")

    page.fill("input[name=key]", "eu-rollout")
    page.click("button[name=_continue]")
    page.wait_for_url("**/admin/flags/flag/*/change/**")
    page.click("text=edit targeting")
    page.wait_for_url("**/admin/flags/flagstate/*/change/**")
    assert page.input_value("select[name=default_variant]") == "off"
    page.check("input[name=enabled]")
    page.click("text=Add another Rule")
    page.select_option("select[name=rules-0-kind]", "rollout")
    page.select_option("select[name=rules-0-variant]", "on")
    page.fill("input[name=rules-0-percentage]", "20")
    page.check("input[name=rules-0-segments][value=eu-customers]")
    page.click("button[name=_continue]")
    page.wait_for_selector("text=serves on to 20% of users by id when in segment eu-customers")
    assert page.locator(".fall-through-warnings").count() == 0
    assert browser.errors == []

    key = Environment.objects.get(pk=production.pk).client_key
    germany = ofrep_values(browser.base, key, "eu-rollout", users("DE", 1000))
    america = ofrep_values(browser.base, key, "eu-rollout", users("US", 200))
    assert set(germany) == {True, False}
    assert sum(germany) / len(germany) == pytest.approx(0.2, abs=0.04)
    assert set(america) == {False}


# The condition builder -------------------------------------------------------------------------------

ATTRIBUTES: list[dict[str, Any]] = [
    {"name": "country", "allowed_values": ["DE", "FR", "NL", "US"]},
    {"name": "plan", "allowed_values": ["free", "pro", "business"]},
    {"name": "age", "type": "number"},
    {"name": "app_version", "type": "semver"},
    {"name": "tags", "type": "list", "allowed_values": ["vip", "early"]},
    {"name": "beta", "type": "boolean"},
]


def define_attributes() -> None:
    for spec in ATTRIBUTES:
        attributes.attribute_create(actor=Actor.system(), **spec)


def test_admin__pm_builds_a_condition_without_typing_json__saved_and_served_through_ofrep(
    browser: Browser,
) -> None:
    User.objects.create_superuser("pm", "pm@example.com", PASSWORD)
    production = services.environment_create(actor=Actor.system(), key="production")
    define_attributes()
    flag = services.flag_create(actor=Actor.system(), key="annual-billing")
    state = FlagState.objects.get(flag=flag, environment=production)
    page = browser.page
    browser.login("pm", f"/admin/flags/flagstate/{state.pk}/change/")

    page.check("input[name=enabled]")
    page.click("text=Add another Rule")
    page.select_option("select[name=rules-0-variant]", "on")
    builder = page.locator("[data-condition-builder]:has(textarea[name=rules-0-condition])")
    builder.locator(".cb-add").click()
    first = builder.locator(".cb-rows > li").nth(0)
    first.locator(".cb-attribute").select_option("plan")
    first.locator(".cb-operator").select_option("$in")
    first.locator("input[type=checkbox][value=pro]").check()
    first.locator("input[type=checkbox][value=business]").check()
    builder.locator(".cb-add").click()
    second = builder.locator(".cb-rows > li").nth(1)
    second.locator(".cb-attribute").select_option("country")
    second.locator(".cb-operator").select_option("$in")
    second.locator("input[type=checkbox][value=DE]").check()
    second.locator("input[type=checkbox][value=FR]").check()
    assert json.loads(page.input_value("textarea[name=rules-0-condition]")) == {
        "plan": {"$in": ["pro", "business"]}, "country": {"$in": ["DE", "FR"]}}
    assert builder.locator(".cb-warnings li").count() == 0
    page.click("button[name=_continue]")
    page.wait_for_selector("text=Forced to on when")
    assert browser.errors == []

    rule = Rule.objects.get(state=state)
    assert rule.condition == {"plan": {"$in": ["pro", "business"]}, "country": {"$in": ["DE", "FR"]}}
    # The saved condition reads back as the same rows.
    saved = page.locator("[data-condition-builder]:has(textarea[name=rules-0-condition])")
    assert saved.locator(".cb-rows > li").count() == 2
    key = Environment.objects.get(pk=production.pk).client_key
    contexts = [{"targetingKey": "u1", "plan": "pro", "country": "DE"},
                {"targetingKey": "u2", "plan": "business", "country": "FR"},
                {"targetingKey": "u3", "plan": "free", "country": "DE"},
                {"targetingKey": "u4", "plan": "pro", "country": "US"},
                {"targetingKey": "u5"}]
    assert ofrep_values(browser.base, key, "annual-billing", contexts) == [True, True, False, False, False]


# Conditions the rows show, as the Python model reads them; and some they cannot show.
ROUND_TRIP = [
    {},
    {"country": "DE"},
    {"plan": {"$in": ["pro", "business"]}, "country": {"$in": ["DE", "FR", "NL"]}},
    {"age": {"$gte": 18, "$lt": 65}},
    {"$or": [{"plan": "pro"}, {"beta": True}]},
    {"app_version": {"$vgte": "2.4.0"}, "email": {"$not": {"$regex": "@example\\.com$"}}},
    {"tags": {"$elemMatch": {"$eq": "vip"}}, "company": {"$exists": True}, "ref": {"$exists": False}},
    {"$and": [{"age": {"$gt": 17}}, {"country": "DE"}, {"age": {"$lt": 30}}]},
    {"tags": {"$all": ["vip", "early"], "$size": 2}},
    {"tags": {"$in": ["vip"]}, "country": {"$nin": ["US"]}, "age": {"$ne": 3.5}},
]
NOT_SHOWN = [
    {"$or": [{"plan": "pro", "country": "DE"}, {"beta": True}]},
    {"country": "DE", "$or": [{"plan": "pro"}, {"beta": True}]},
    {"$not": {"plan": "pro"}},
    {"scores": {"$elemMatch": {"$gt": 3}}},
    {"id": {"$inGroup": "beta-testers"}},
]


def test_builder__json_to_rows_to_json__same_condition_and_same_rows_as_the_python_model(browser: Browser) -> None:
    User.objects.create_superuser("pm", "pm@example.com", PASSWORD)
    define_attributes()
    page = browser.page
    browser.login("pm", "/admin/flags/segment/add/")
    textarea = page.locator("textarea[name=condition]")
    builder = page.locator("[data-condition-builder]")

    for condition in ROUND_TRIP:
        model = builder_from_condition(condition)
        assert model is not None
        # The script reads the condition as the Python model does.
        assert page.evaluate("c => window.conditionBuilder.parse(c)", condition) == builder_to_document(model)
        # Typed as JSON, shown as rows, written back from the rows: the same condition.
        textarea.fill(json.dumps(condition))
        assert builder.locator(".cb-rows > li").count() == len(model.clauses)
        builder.locator(".cb-match").dispatch_event("change")
        written = textarea.input_value()
        assert (json.loads(written) if written else {}) == condition, condition
        assert builder.locator(".cb-note").is_hidden()
    for condition in NOT_SHOWN:
        assert builder_from_condition(condition) is None
        assert page.evaluate("c => window.conditionBuilder.parse(c)", condition) is None
        textarea.fill(json.dumps(condition))
        assert "more structure than rows can show" in builder.locator(".cb-note").inner_text()
    assert browser.errors == []


def test_builder__unknown_attribute_and_value_outside_the_list__warned_and_saved(browser: Browser) -> None:
    User.objects.create_superuser("pm", "pm@example.com", PASSWORD)
    define_attributes()
    page = browser.page
    browser.login("pm", "/admin/flags/segment/add/")
    page.fill("input[name=key]", "odd-ones")
    builder = page.locator("[data-condition-builder]")
    builder.locator(".cb-add").click()
    row = builder.locator(".cb-rows > li").nth(0)
    row.locator(".cb-attribute").select_option("__other__")
    row.locator(".cb-attribute-other").fill("browser")
    row.locator(".cb-operator").select_option("$eq")
    row.locator(".cb-value").fill("firefox")

    warnings = builder.locator(".cb-warnings li").all_inner_texts()
    assert warnings == ["browser is not a defined attribute: check its spelling, or define it so that the builder "
                        "knows its type and values. Units whose context lacks it are treated as not having it."]
    page.click("button[name=_save]")
    page.wait_for_url("**/admin/flags/segment/")
    assert Segment.objects.get(key="odd-ones").condition == {"browser": "firefox"}
    assert browser.errors == []


def test_pages__ramp_and_guided_creation_built_with_rows_and_segments__served_through_ofrep(
    browser: Browser,
) -> None:
    User.objects.create_superuser("pm", "pm@example.com", PASSWORD)
    production = services.environment_create(actor=Actor.system(), key="production")
    define_attributes()
    services.segment_create(actor=Actor.system(), key="eu-customers", name="EU customers",
                            condition={"country": {"$in": EU}})
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    flag = services.flag_create(actor=Actor.system(), key="new-search")
    services.flag_state_update(actor=Actor.system(), flag=flag, environment=production, enabled=True)
    page = browser.page
    browser.login("pm", "/flags/new-search/ramps/new")

    # A ramp to business customers or anyone in NL, straight to 100%.
    page.fill("input[name=percents]", "100")
    builder = page.locator("[data-condition-builder]")
    builder.locator(".cb-match").select_option("any")
    builder.locator(".cb-add").click()
    row = builder.locator(".cb-rows > li").nth(0)
    row.locator(".cb-attribute").select_option("plan")
    row.locator(".cb-operator").select_option("$eq")
    row.locator("select.cb-value").select_option("business")
    builder.locator(".cb-add").click()
    row = builder.locator(".cb-rows > li").nth(1)
    row.locator(".cb-attribute").select_option("country")
    row.locator(".cb-operator").select_option("$eq")
    row.locator("select.cb-value").select_option("NL")
    page.click("#ramp-form button[type=submit]")
    page.wait_for_url("**/flags/new-search/")
    rule = Rule.objects.get(state__flag=flag)
    assert rule.condition == {"$or": [{"plan": "business"}, {"country": "NL"}]}
    key = Environment.objects.get(pk=production.pk).client_key
    served = ofrep_values(browser.base, key, "new-search", [
        {"targetingKey": "a", "plan": "business", "country": "US"}, {"targetingKey": "b", "country": "NL"},
        {"targetingKey": "c", "plan": "free", "country": "US"}])
    assert served == [True, True, False]

    # An experiment for pro customers in the EU segment, through the guided creation.
    page.goto(f"{browser.base}/experiments/new/basics/?restart=1")
    page.fill("input[name=key]", "eu-pro-checkout")
    page.fill("textarea[name=hypothesis]", "A one-page checkout lifts purchases by 5% because it is shorter.")
    page.select_option("select[name=environment]", "production")
    page.click("#wizard-next")
    page.wait_for_url("**/new/flag/")
    page.fill("input[name=new_flag]", "eu-pro-checkout")
    page.click("#wizard-next")
    page.wait_for_url("**/new/split/")
    page.select_option("select[name=control]", "off")
    page.check("input[name=treatments][value=on]")
    builder = page.locator("[data-condition-builder]")
    builder.locator(".cb-add").click()
    row = builder.locator(".cb-rows > li").nth(0)
    row.locator(".cb-attribute").select_option("plan")
    row.locator(".cb-operator").select_option("$in")
    row.locator("input[type=checkbox][value=pro]").check()
    page.check("input[name=segments][value=eu-customers]")
    page.click("#wizard-next")
    page.wait_for_url("**/new/metrics/")
    page.select_option("select[name=primary]", "purchase")
    page.click("#wizard-next")
    page.wait_for_url("**/new/power/")
    page.fill("input[name=mde]", "5")
    page.fill("input[name=baseline]", "12")
    page.fill("input[name=daily_users]", "3000")
    page.click("#wizard-next")
    page.wait_for_url("**/new/review/")
    assert page.inner_text("#review-targeting").startswith("In segment eu-customers and plan is pro")
    page.click("#create-start")
    page.wait_for_url("**/experiments/eu-pro-checkout/")
    assert browser.errors == []

    inside = ofrep_values(browser.base, key, "eu-pro-checkout",
                          [{"targetingKey": f"in-{i}", "plan": "pro", "country": "DE"} for i in range(200)])
    outside = ofrep_values(browser.base, key, "eu-pro-checkout",
                           [{"targetingKey": f"out-{i}", "plan": "pro", "country": "US"} for i in range(50)]
                           + [{"targetingKey": f"free-{i}", "plan": "free", "country": "FR"} for i in range(50)])
    assert 0.4 < sum(inside) / len(inside) < 0.6
    assert set(outside) == {False}
