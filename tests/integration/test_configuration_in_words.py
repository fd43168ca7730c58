"""Configuration as product managers read it: rules in words wherever they are listed (flag
pages, the flag admin, audit histories) and values as JSON, never Python's reprs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from audit.types import Actor
from base.models import Environment
from flags import ramps, services
from flags.demo_data import seed_demo
from flags.models import Flag, FlagState, Rule, Segment
from tests.integration.conftest_admin import text_of

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
# Python's reprs of JSON values: True, False, None and single-quoted dicts and lists.
PYTHON_REPR = re.compile(r"\b(?:True|False|None)\b|\{'[^']*': |\['[^']*'[,\]]")


class _VisibleText(HTMLParser):
    """What a person reads on a page: text outside scripts and styles, and tooltips of our own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self.hidden += 1
        self.parts.extend(value for name, value in attrs if name == "data-tip" and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template"):
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def _visible(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    reader = _VisibleText()
    reader.feed(response.content.decode())
    return " ".join(" ".join(reader.parts).split())


@pytest.fixture
def demo(admin_user: User, tmp_path: Path) -> Client:
    seed_demo(credentials_file=tmp_path / "demo-login.json")
    client = Client()
    client.force_login(admin_user)
    return client


def test_demo_pages__values_as_json__no_python_repr_anywhere(demo: Client) -> None:
    urls = ["/flags/", reverse("admin:flags_flag_changelist"), reverse("admin:flags_flagstate_changelist"),
            reverse("admin:flags_segment_changelist")]
    for flag in Flag.objects.all():
        urls += [f"/flags/{flag.key}/", reverse("admin:flags_flag_change", args=[flag.pk]),
                 reverse("admin:flags_flag_history", args=[flag.pk])]
    for segment in Segment.objects.all():
        urls += [reverse("admin:flags_segment_change", args=[segment.pk]),
                 reverse("admin:flags_segment_history", args=[segment.pk])]
    urls += [reverse("admin:flags_flagstate_change", args=[s.pk]) for s in FlagState.objects.all()]
    urls += [reverse("admin:audit_auditentry_change", args=[e.pk]) for e in AuditEntry.objects.all()[:20]]

    shown = {url: _visible(demo, url) for url in urls}

    for url, text in shown.items():
        found = [text[max(0, m.start() - 40):m.end() + 40] for m in PYTHON_REPR.finditer(text)]
        assert not found, (url, found)
    pricing = shown["/flags/pricing-page/"]
    assert '{"cta": "Start free trial", "layout": "classic"}' in pricing
    assert "Forced to annual-first when plan is one of pro, business and country is one of DE, FR, NL" in pricing
    assert "Forced to compact when in segment beta-testers" in pricing
    assert "off false on true" in shown["/flags/new-checkout/"]
    segments = shown[reverse("admin:flags_segment_changelist")]
    assert "email matches the pattern @example\\.com$" in segments
    assert "country is one of AT, BE, DE, ES, FR, IE, IT, NL, PL, SE" in segments
    assert "id is one of 4 listed values" in segments


def test_flag_page__every_kind_of_rule__in_words(client: Client, admin_user: User, environments: Any) -> None:
    env = environments["production"]
    services.flag_create(actor=SYSTEM, key="new-checkout")
    flag = services.flag_create(actor=SYSTEM, key="checkout-copy", value_type="string",
                                variants=[{"key": "control", "value": "Buy"}, {"key": "treatment", "value": "Buy now"}])
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="force", variant="treatment",
                              condition={"plan": {"$in": ["pro", "business"]}},
                              prerequisites=[{"flag": "new-checkout", "condition": {"value": True}}])
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="rollout", variant="treatment",
                              coverage=0.2, starts_at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="experiment",
                              variations=["control", "treatment"], weights=[0.5, 0.5])
    client.force_login(admin_user)

    page = _visible(client, f"/flags/{flag.key}/")

    assert "Forced to treatment when plan is one of pro, business and new-checkout is on" in page
    assert "Serves treatment to 20% of users by id, from 2026-12-01 10:00 UTC" in page
    assert "An experiment split: control 50%, treatment 50% (by id)" in page
    assert '"Buy now"' in page and "$in" not in page


def test_flag_page__rollout_ramp__says_whom_it_serves_in_words(
    client: Client, admin_user: User, environments: Any
) -> None:
    flag = services.flag_create(actor=SYSTEM, key="new-search")
    services.segment_create(actor=SYSTEM, key="beta-testers", name="Beta testers",
                            condition={"email": {"$regex": "@example\\.com$"}})
    start = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    ramps.ramp_create(actor=SYSTEM, flag=flag, environment=environments["production"], variant="on",
                      steps=ramps.ramp_plan(start=start, interval=timedelta(days=1), percents=(10, 100)),
                      condition={"$or": [{"plan": "business"}, {"country": "NL"}]}, segments=["beta-testers"])
    ramps.ramp_create(actor=SYSTEM, flag=flag, environment=environments["staging"], variant="on",
                      steps=ramps.ramp_plan(start=start, interval=timedelta(days=1), percents=(50,)))
    client.force_login(admin_user)

    page = _visible(client, f"/flags/{flag.key}/")

    assert ("Serves on to a rising share of users by id when in segment beta-testers and (plan is business or "
            "country is NL);") in page
    assert "Serves on to a rising share of users by id; now" in page
    assert "$or" not in page


def test_flag_page__recent_changes__rules_added_changed_and_removed_in_words(
    client: Client, admin_user: User, environments: Any
) -> None:
    flag = services.flag_create(actor=SYSTEM, key="new-checkout")
    rule = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=environments["production"], kind="rollout",
                                     variant="on", coverage=0.2, condition={"plan": {"$in": ["pro", "business"]}})
    services.flag_rule_update(actor=SYSTEM, rule=Rule.objects.get(pk=rule.pk), coverage=0.5)
    services.flag_rule_delete(actor=SYSTEM, rule=Rule.objects.get(pk=rule.pk))
    client.force_login(admin_user)

    page = _visible(client, f"/flags/{flag.key}/")

    assert "Rule added in production: serves on to 20% of users by id when plan is one of pro, business" in page
    assert ("Rule changed in production: now serves on to 50% of users by id when plan is one of pro, business "
            "(was: serves on to 20% of users by id when plan is one of pro, business)") in page
    assert "Rule removed in production: serves on to 50% of users by id when plan is one of pro, business" in page
    assert "$in" not in page


def test_flag_admin__rules_listed_with_a_summary_in_words(admin_client: Client, environments: Any) -> None:
    flag = services.flag_create(actor=SYSTEM, key="new-checkout")
    env = environments["production"]
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="force", variant="on",
                              condition={"country": {"$in": ["DE", "FR"]}})
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=env, kind="rollout", variant="on", coverage=0.1)
    state = FlagState.objects.get(flag=flag, environment=env)
    words = ("Forced to on when country is one of DE, FR", "Serves on to 10% of users by id")

    for url in (reverse("admin:flags_flagstate_change", args=[state.pk]), reverse("admin:flags_flagstate_changelist"),
                reverse("admin:flags_flag_change", args=[flag.pk])):
        page = " ".join(text_of(admin_client.get(url)).split())
        assert all(w in page for w in words), (url, page)
    state_page = " ".join(text_of(admin_client.get(reverse("admin:flags_flagstate_change", args=[state.pk]))).split())
    assert "Summary Forced to on when country is one of DE, FR" in state_page


def test_audit_history__changed_rule__shown_in_words_before_and_after(
    admin_client: Client, environments: Any
) -> None:
    flag = services.flag_create(actor=SYSTEM, key="new-checkout")
    rule = services.flag_rule_create(actor=SYSTEM, flag=flag, environment=environments["production"], kind="force",
                                     variant="on", condition={"plan": "pro"})
    services.flag_rule_update(actor=SYSTEM, rule=Rule.objects.get(pk=rule.pk),
                              condition={"plan": {"$in": ["pro", "business"]}, "country": "DE"})
    entry = AuditEntry.objects.get(action="flag.rule_update")

    for url in (reverse("admin:flags_flag_history", args=[flag.pk]),
                reverse("admin:audit_auditentry_change", args=[entry.pk])):
        page = " ".join(text_of(admin_client.get(url)).split())
        assert "In words: forced to on when plan is pro" in page, url
        assert "In words: forced to on when plan is one of pro, business and country is DE" in page, url
        # Two rows (condition › country, condition › plan) change the one rule: its words are shown once.
        assert page.count("In words: forced to on when plan is one of pro, business and country is DE") == 1, url


def test_audit_history__segment_condition__shown_in_words(admin_client: Client, db: Any) -> None:
    segment = services.segment_create(actor=SYSTEM, key="internal", name="Employees", kind="condition",
                                      condition={"email": {"$regex": "@example\\.com$"}})
    services.segment_update(actor=SYSTEM, segment=segment, condition={"email": {"$regex": "@example\\.org$"}})

    page = " ".join(text_of(admin_client.get(reverse("admin:flags_segment_history", args=[segment.pk]))).split())

    assert "In words: email matches the pattern @example\\.com$" in page
    assert "In words: email matches the pattern @example\\.org$" in page
    assert '"@example\\\\.org$"' in page  # the value itself, as JSON


def test_flag_admin__error_about_a_list_item__named_from_one(admin_client: Client, environments: Any) -> None:
    data = {"key": "needs-parent", "name": "", "value_type": "boolean", "description": "", "owner": "", "tags": "",
            "lifecycle": "temporary", "default_variant": "", "off_variant": "",
            "prerequisites": '[{"flag": "nope"}]', "variants-TOTAL_FORMS": "0", "variants-INITIAL_FORMS": "0",
            "variants-MIN_NUM_FORMS": "0", "variants-MAX_NUM_FORMS": "1000"}

    response = admin_client.post(reverse("admin:flags_flag_add"), data)

    assert response.status_code == 200
    errors = [str(e) for e in response.context["adminform"].form.errors.get("prerequisites", [])]
    assert "Prerequisite 1, flag: Unknown flag 'nope'." in [e.replace("&#x27;", "'") for e in errors]
    assert not Flag.objects.filter(key="needs-parent").exists()
    assert Environment.objects.count() == 2
