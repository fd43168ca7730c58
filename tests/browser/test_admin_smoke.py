"""Smoke test of the admin in headless Chromium: a product manager logs in and creates a flag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEntry
from audit.types import Actor
from flags import services
from flags.models import Flag
from tests.browser.chromium import chromium

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with chromium(monkeypatch) as browser:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        yield page


def test_admin__pm_logs_in_and_creates_a_flag__flag_exists_with_audit_entry(
    live_server: Any, browser_page: Any
) -> None:
    User.objects.create_superuser("pm", "pm@example.com", "pm-password-123")
    services.environment_create(actor=Actor.system(), key="production")

    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/flags/flag/add/")
    page.fill("input[name=username]", "pm")
    page.fill("input[name=password]", "pm-password-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/flags/flag/add/")

    page.fill("input[name=key]", "browser-checkout")
    page.fill("input[name=name]", "Checkout from the browser")
    page.click("button[name=_save]")
    page.wait_for_url("**/admin/flags/flag/")

    assert "browser-checkout" in page.content()
    flag = Flag.objects.get(key="browser-checkout")
    assert [v.key for v in flag.variants.all()] == ["off", "on"]
    assert flag.states.get().environment.key == "production"
    assert AuditEntry.objects.filter(action="flag.create", object_key="browser-checkout", via="admin").exists()
