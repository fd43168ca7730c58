"""Every page answers with a strict Content-Security-Policy and holds nothing that policy refuses:
no inline script, no inline event handler, no style attribute. The admin's policy adds only what
its framework needs, never inline script."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from experiments.models import Experiment
from flags import ramps
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db


class InlineCode(HTMLParser):
    """Collects what a strict policy would block: inline scripts, `on…=` handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script: bool = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names and dict(attrs).get("type") != "application/json":
            self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"<{tag} {name}=…>" for name in names if name.startswith("on") or name == "style"]
        self.found += [f"<{tag} href=javascript:…>" for name, value in attrs
                       if name == "href" and (value or "").strip().lower().startswith("javascript:")]


def _directives(header: str) -> dict[str, list[str]]:
    parts = [p.strip().split() for p in header.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def _page_paths(winner: Experiment) -> list[str]:
    steps = ramps.ramp_plan(start=timezone.now() - timedelta(hours=30), interval=timedelta(days=1))
    ramps.ramp_create(actor=factories.ACTOR, flag=winner.flag, environment=winner.environment,
                      variant="treatment", steps=steps)
    draft = factories.create_experiment(factories.flat_plan("draft-idea"), start=False)
    key, flag, env = winner.key, winner.flag.key, winner.environment.key
    return [
        "/experiments/", f"/experiments/{key}/", f"/experiments/{key}/?slice=platform",
        f"/experiments/{key}/panels/slices?slice=platform", f"/experiments/{key}/panels/trend?trend=revenue",
        f"/experiments/{key}/panels/power?mde=3",
        f"/experiments/{draft.key}/", f"/experiments/{key}/stop",
        "/experiments/new/basics/",
        "/flags/", "/flags/?stale=1", f"/flags/{flag}/", f"/flags/{flag}/ramps/new",
        f"/flags/{flag}/environments/{env}/switch",
    ]


def test_pages__strict_policy_header_and_no_inline_code(client_for: Any, analyst: User, winner: Experiment) -> None:
    client = client_for(analyst)
    for path in _page_paths(winner):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = _directives(response["Content-Security-Policy"])
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"], path
        assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"], path
        parser = InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == [], (path, parser.found)


def test_pages__behaviour_comes_from_a_static_script(client_for: Any, analyst: User, winner: Experiment) -> None:
    html = client_for(analyst).get(f"/experiments/{winner.key}/").content.decode()
    assert re.search(r'<script src="/static/pages/pages\.js[^"]*" defer>', html)
    assert 'data-autosubmit' in html
    script = Client().get("/static/pages/pages.js")
    assert script.status_code == 200


def test_login_page__strict_scripts(client: Client) -> None:
    response = client.get("/admin/login/")
    policy = _directives(response["Content-Security-Policy"])
    assert "'unsafe-inline'" not in policy["script-src"]
    parser = InlineCode()
    parser.feed(response.content.decode())
    assert not [f for f in parser.found if "script" in f or re.match(r"<\w+ on\w+=", f)], parser.found


def test_admin__policy_adds_only_eval_and_inline_styles(admin_client: Client, winner: Experiment) -> None:
    response = admin_client.get(f"/admin/flags/flag/{winner.flag.pk}/change/")
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'", "'unsafe-eval'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    parser = InlineCode()
    parser.feed(response.content.decode())
    assert not [f for f in parser.found if "script" in f or re.match(r"<\w+ on\w+=", f)], parser.found


def test_api_docs__no_inline_script_or_style(admin_client: Client) -> None:
    response = admin_client.get("/api/docs/")
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    parser = InlineCode()
    parser.feed(response.content.decode())
    assert parser.found == []
    script = admin_client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
