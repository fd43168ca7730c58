"""A new flag falls through to its off variant in the admin, the management API and the guided
creation alike, so that a percentage rule hands its variant only to the share it picks; and the
flag-state form warns when the fall-through serves what a rollout hands out anyway."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from experiments.models import Metric
from flags import services
from flags.engine.evaluation import evaluate
from flags.mappers import environment_snapshot
from flags.models import Flag, FlagState
from tests.integration.conftest_admin import add_inline_form, errors_of, flag_add_data, read_form
from tests.integration.pages import factories

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
EU = ["AT", "BE", "DE", "ES", "FR", "IE", "IT", "NL", "PL", "SE"]
UNITS = 2000


def _eu_segment() -> None:
    services.segment_create(actor=SYSTEM, key="eu-customers", condition={"country": {"$in": EU}})


def _rollout(**values: Any) -> dict[str, Any]:
    return {"position": "", "kind": "rollout", "enabled": "on", "description": "", "condition": "", "variant": "on",
            "percentage": "20", "segments": ["eu-customers"], "split": "", "hash_attribute": "id",
            "experiment_key": "", "prerequisites": "", "seed": "", "fallback_attribute": "", "namespace": "",
            "phase": "", **values}


def _share_on(key: str, country: str) -> float:
    snapshot = environment_snapshot(environment=Environment.objects.get(key="production"))
    values = [evaluate(snapshot, key, {"id": f"user-{i}", "country": country}).value for i in range(UNITS)]
    assert set(values) <= {True, False}, set(values)
    return sum(1 for value in values if value is True) / UNITS


def _state(key: str, env: str = "production") -> FlagState:
    return FlagState.objects.select_related("environment").get(flag__key=key, environment__key=env)


def _state_url(key: str) -> str:
    return reverse("admin:flags_flagstate_change", args=[_state(key).pk])


def _assert_twenty_percent_of_eu_only(key: str) -> None:
    assert _share_on(key, "DE") == pytest.approx(0.2, abs=0.03)
    assert _share_on(key, "US") == 0.0


# The admin ----------------------------------------------------------------------------------


def test_admin__new_boolean_flag_with_a_20_percent_rollout_to_eu__only_a_fifth_of_eu_users_get_true(
    admin_client: Client, environments: Any
) -> None:
    _eu_segment()
    response = admin_client.post(reverse("admin:flags_flag_add"), flag_add_data("eu-rollout"))
    assert response.status_code == 302, errors_of(response)
    assert _state("eu-rollout").default_variant == "off"

    data = read_form(admin_client, _state_url("eu-rollout"), "flagstate_form")
    assert data["default_variant"] == "off"
    data["enabled"] = "on"
    add_inline_form(data, "rules", _rollout())
    response = admin_client.post(_state_url("eu-rollout"), data, follow=True)

    assert response.status_code == 200
    assert not [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    _assert_twenty_percent_of_eu_only("eu-rollout")


def test_admin__default_set_to_the_rolled_out_variant__form_warns_the_rollout_is_moot(
    admin_client: Client, environments: Any
) -> None:
    _eu_segment()
    services.flag_create(actor=SYSTEM, key="eu-rollout")
    data = read_form(admin_client, _state_url("eu-rollout"), "flagstate_form")
    data.update(enabled="on", default_variant="on")
    add_inline_form(data, "rules", _rollout())

    response = admin_client.post(_state_url("eu-rollout"), data, follow=True)

    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1, warnings
    assert "eu-rollout in production: Rule 1 (serves on to 20% of users by id when in segment eu-customers)" \
        in warnings[0]
    assert "the rollout changes nothing" in warnings[0] and "set the default to off" in warnings[0]
    page = admin_client.get(_state_url("eu-rollout")).content.decode()
    assert "fall-through-warnings" in page and "the rollout changes nothing" in page
    # The flag page says it too.
    flag_page = admin_client.get(reverse("flag-pages:detail", args=["eu-rollout"])).content.decode()
    assert "fall-through-warning" in flag_page and "the rollout changes nothing" in flag_page


def test_admin__default_changed_on_the_flag_page_inline__warns_too(
    admin_client: Client, environments: Any
) -> None:
    _eu_segment()
    flag = services.flag_create(actor=SYSTEM, key="eu-rollout")
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=environments["production"], kind="rollout",
                              variant="on", coverage=0.2, segments=["eu-customers"])
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    data = read_form(admin_client, url, "flag_form")
    data["states-0-default_variant"] = "on"  # production comes first

    response = admin_client.post(url, data, follow=True)

    warnings = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
    assert len(warnings) == 1 and "the rollout changes nothing" in warnings[0], warnings


def test_admin__sensible_state__no_warning_on_the_form(admin_client: Client, environments: Any) -> None:
    _eu_segment()
    flag = services.flag_create(actor=SYSTEM, key="eu-rollout")
    services.flag_rule_create(actor=SYSTEM, flag=flag, environment=environments["production"], kind="rollout",
                              variant="on", coverage=0.2, segments=["eu-customers"])

    page = admin_client.get(_state_url("eu-rollout")).content.decode()

    assert "fall-through-warnings" not in page
    assert "Units no rule matches get <code>off</code>." in page


# The management API ---------------------------------------------------------------------------


def test_api__new_boolean_flag_with_a_20_percent_rollout_to_eu__only_a_fifth_of_eu_users_get_true(
    write_client: APIClient, environments: Any
) -> None:
    _eu_segment()
    created = write_client.post("/api/v1/flags", {"key": "eu-rollout"}, format="json")
    assert created.status_code == 201, created.json()
    assert {e: s["default_variant"] for e, s in created.json()["environments"].items()} == {
        "production": "off", "staging": "off"}
    rule = write_client.post("/api/v1/flags/eu-rollout/environments/production/rules",
                             {"kind": "rollout", "variant": "on", "coverage": 0.2, "segments": ["eu-customers"]},
                             format="json")
    assert rule.status_code == 201, rule.json()
    switched = write_client.patch("/api/v1/flags/eu-rollout/environments/production", {"enabled": True},
                                  format="json")
    assert switched.status_code == 200, switched.json()

    _assert_twenty_percent_of_eu_only("eu-rollout")


# The guided creation ------------------------------------------------------------------------


def test_guided_creation__new_flag__falls_through_to_off(client: Client, db: Any) -> None:
    factories.environment()
    factories.ensure_metrics([factories.MetricPlan("purchase", "conversion")])
    user: User = factories.staff_user("pm")
    client.force_login(user)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("basics", {"key": "eu-test", "owner": "pm", "environment": "production",
                    "hypothesis": "A new checkout lifts purchases by 5% because it is shorter."}),
        ("flag", {"new_flag": "eu-test-flag"}),
        ("split", {"control": "off", "treatments": ["on"], "weights": "50/50", "coverage": "20",
                   "condition": "", "hash_attribute": "id"}),
        ("metrics", {"primary": "purchase", "alpha": "0.05", "correction": "none", "slice_attributes": ""}),
        ("power", {"mde": "5", "baseline": "12", "daily_users": "4000"}),
    ]
    for step, data in steps:
        response = client.post(f"/experiments/new/{step}/", data)
        assert response.status_code == 302, (step, response.content.decode()[:2000])
    assert client.post("/experiments/new/review/", {"action": "start"}).status_code == 302
    assert Metric.objects.filter(key="purchase").exists()

    state = _state("eu-test-flag")
    assert (state.enabled, state.default_variant, state.off_variant) == (True, "off", "off")
    # Outside the experiment's 20% everyone gets the control.
    snapshot = environment_snapshot(environment=state.environment)
    values = [evaluate(snapshot, "eu-test-flag", {"id": f"user-{i}"}).value for i in range(UNITS)]
    assert sum(values) / UNITS == pytest.approx(0.1, abs=0.03)
    assert Flag.objects.get(key="eu-test-flag").variants.count() == 2
