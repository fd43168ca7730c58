"""Smoke test of the admin in headless Chromium: a product manager logs in and creates a flag."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections

from audit.models import AuditEntry
from audit.types import Actor
from flags import services
from flags.models import Flag

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
IN_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _unavailable(reason: str) -> None:
    """Skip on a developer machine without a browser; in CI a missing browser is a failure."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is not installed ({exc})")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            # ORM calls made while Playwright runs get their own connections: close them, or the
            # test database cannot be dropped at the end of the run.
            connections.close_all()
            browser.close()


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
