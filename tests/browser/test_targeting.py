"""Targeting as a product manager builds it in headless Chromium, checked through OFREP over
real HTTP against the live server: a new flag with a 20% rollout to a segment serves its
variant to a fifth of the segment and to nobody else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User

from audit.types import Actor
from base.models import Environment
from flags import services
from serving.ratelimit import limiter
from serving.snapshots import store
from serving.usage import recorder as usage
from tests.browser.chromium import chromium

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
