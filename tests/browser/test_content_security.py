"""The pages, the API docs and the admin under their Content-Security-Policy in Chromium: no
violation is reported, and what the pages do with script still works (a select that submits its
form, a button that asks before it acts, the wizard, the admin's Alpine.js widgets and forms)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from flags import ramps
from flags.models import Flag
from tests.browser.chromium import chromium
from tests.integration.pages import factories

PASSWORD = "pw-12345-x"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs in every document before its own scripts; a policy cannot refuse it.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""


class Watched:
    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))

    def _console(self, message: Any) -> None:
        text = str(message.text)
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.problems.append(f"console: {text}")
        elif message.type == "error" and not str(message.location.get("url", "")).endswith("/favicon.ico"):
            self.problems.append(f"console error: {text}")

    def go(self, path: str) -> None:
        response = self.page.goto(f"{self.base}{path}")
        assert response is not None and response.ok, (path, response and response.status)
        assert "'self'" in (response.header_value("content-security-policy") or ""), path
        self.check(path)

    def check(self, where: str) -> None:
        self.page.wait_for_load_state("load")
        self.problems += [f"{where}: {v}" for v in self.page.evaluate("window.__violations || []")]
        assert self.problems == [], self.problems


@pytest.fixture
def watched(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Watched]:
    with chromium(monkeypatch) as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(LISTEN)
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield Watched(page, live_server.url)


def _login(watched: Watched, username: str, then: str) -> None:
    watched.page.goto(f"{watched.base}/admin/login/?next={then}")
    watched.check("login page")
    watched.page.fill("input[name=username]", username)
    watched.page.fill("input[name=password]", PASSWORD)
    watched.page.click("button[type=submit]")
    watched.page.wait_for_url(f"**{then}")


def test_csp__pages_and_admin__no_violation_and_scripts_work(watched: Watched) -> None:
    winner = factories.seed(factories.winner_plan(history=3))
    steps = ramps.ramp_plan(start=timezone.now() - timedelta(hours=30), interval=timedelta(days=1))
    ramp = ramps.ramp_create(actor=factories.ACTOR, flag=winner.flag, environment=winner.environment,
                             variant="treatment", steps=steps)
    user = factories.staff_user("pm")
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    page = watched.page
    _login(watched, "pm", "/experiments/")
    watched.check("experiments list")

    # Results page: choosing a slice dimension submits its form (pages.js, no inline handler).
    watched.go(f"/experiments/{winner.key}/")
    page.select_option("#slice-attr", "platform")
    page.wait_for_url("**slice=platform**")
    assert page.locator("#slice-table tr[data-slice]").count() > 0
    page.select_option("#trend-metric", index=1)
    page.wait_for_url("**trend=**")
    watched.check("results page after the selects")

    # Flag page: removing a ramp asks first; Cancel keeps it, OK removes it.
    watched.go(f"/flags/{winner.flag.key}/")
    remove = f"[data-ramp='{ramp.id}'] button[value=remove]"
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click(remove)
    page.wait_for_timeout(300)
    assert ramps.ramp_list(flag=winner.flag, environment=winner.environment) != []
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(remove)
    page.wait_for_url(f"**/flags/{winner.flag.key}/")
    page.wait_for_load_state("load")
    assert ramps.ramp_list(flag=winner.flag, environment=winner.environment) == []
    watched.check("flag page after removing the ramp")

    # Guided creation: the first steps render and move on.
    watched.go("/experiments/new/basics/")
    page.fill("input[name=key]", "csp-check")
    page.fill("input[name=name]", "CSP check")
    page.fill("textarea[name=hypothesis]", "A page without inline script still works because nothing changed.")
    page.fill("input[name=owner]", "pm")
    page.select_option("select[name=environment]", "production")
    page.click("#wizard-next")
    page.wait_for_url("**/new/flag/")
    watched.check("wizard flag step")

    # Admin change form: Alpine.js starts (x-cloak is removed) and the form saves.
    flag = Flag.objects.get(key=winner.flag.key)
    watched.go(f"/admin/flags/flag/{flag.pk}/change/")
    page.wait_for_function("() => window.Alpine !== undefined && !document.documentElement.hasAttribute('x-cloak')")
    page.fill("input[name=name]", "Renamed under the policy")
    page.click("button[name=_continue]")
    page.wait_for_url(f"**/admin/flags/flag/{flag.pk}/change/")
    page.wait_for_load_state("load")
    flag.refresh_from_db()
    assert flag.name == "Renamed under the policy"
    watched.check("admin change form after saving")

    # API documentation: Swagger UI renders the schema.
    watched.go("/api/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    watched.check("API docs")
