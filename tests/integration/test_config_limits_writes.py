"""Every way configuration is written holds it to the documented limits (flags.engine.limits):
the API, the admin forms, segments, ramps, experiments and prerequisites. A refused write names
the field and writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.types import Actor
from base.models import Environment
from config.errors import ValidationFailed
from experiments.lifecycle import experiment_create
from flags import ramps, services
from flags.engine import limits
from flags.models import Flag, FlagState, Rule, Segment
from tests.integration.conftest_admin import (
    add_inline_form,
    errors_of,
    field_errors,
    flag_add_data,
    read_form,
    snapshot,
)

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


def too_deep(depth: int = limits.CONDITION_MAX_DEPTH + 1) -> dict[str, Any]:
    """A condition `depth` levels deep (odd depths only): `$and` lists of one condition."""
    condition: dict[str, Any] = {"plan": "pro"}
    for _ in range((depth - 1) // 2):
        condition = {"$and": [condition]}
    return condition


def _refused(call: Any, **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as refused:
        call(**kwargs)
    details = refused.value.details
    assert isinstance(details, dict)
    return details


def _flag(key: str = "checkout", **kwargs: Any) -> Flag:
    return services.flag_create(actor=SYSTEM, key=key, **kwargs)


# --- services --------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [limits.CONDITION_MAX_DEPTH + 1, 301])
def test_segment_create__condition_too_deep__refused(environments: dict[str, Environment], depth: int) -> None:
    details = _refused(services.segment_create, actor=SYSTEM, key="deep", condition=too_deep(depth))
    assert list(details) == ["condition"] and "nested deeper than" in details["condition"][0]
    assert not Segment.objects.exists()


def test_segment_create__more_ids_than_the_limit__refused(environments: dict[str, Environment]) -> None:
    ids = [f"u-{i}" for i in range(limits.SEGMENT_MAX_IDS + 1)]
    details = _refused(services.segment_create, actor=SYSTEM, key="many", kind="ids", attribute="id", ids=ids)
    assert details == {"ids": [f"At most {limits.SEGMENT_MAX_IDS:,} ids (this list has {len(ids):,})."]}
    services.segment_create(actor=SYSTEM, key="many", kind="ids", attribute="id", ids=ids[:-1])


def test_segment_update__condition_too_deep__refused(environments: dict[str, Environment]) -> None:
    segment = services.segment_create(actor=SYSTEM, key="beta", condition={"beta": True})
    details = _refused(services.segment_update, actor=SYSTEM, segment=segment, condition=too_deep())
    assert list(details) == ["condition"]
    assert Segment.objects.get(key="beta").condition == {"beta": True}


def test_ramp_create__condition_too_deep__refused_and_no_step_written(environments: dict[str, Environment]) -> None:
    flag = _flag()
    steps = ramps.ramp_plan(start=timezone.now(), interval=timedelta(days=1))
    details = _refused(ramps.ramp_create, actor=SYSTEM, flag=flag, environment=environments["production"],
                       variant="on", steps=steps, condition=too_deep(301))
    assert list(details) == ["condition"]
    assert not Rule.objects.exists()


def test_experiment_create__condition_too_deep__refused(environments: dict[str, Environment]) -> None:
    flag = _flag("layout", value_type="string", variants=[{"key": "a", "value": "a"}, {"key": "b", "value": "b"}])
    details = _refused(experiment_create, actor=SYSTEM, key="layout-test", flag=flag,
                       environment=environments["production"], condition=too_deep(301),
                       variations=[{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}])
    assert list(details) == ["condition"] and "nested deeper than" in details["condition"][0]


def test_flag_prerequisites__condition_too_deep__refused_naming_the_item(
    environments: dict[str, Environment],
) -> None:
    _flag("parent")
    child = _flag("child")
    prerequisites = [{"flag": "parent", "condition": {"value": True}}, {"flag": "parent", "condition": too_deep()}]
    details = _refused(services.flag_update, actor=SYSTEM, flag=child, prerequisites=prerequisites)
    assert list(details) == ["prerequisites[1].condition"]


def test_prerequisites__chain_longer_than_the_limit__refused_showing_it(
    environments: dict[str, Environment],
) -> None:
    length = limits.PREREQUISITE_MAX_CHAIN
    flags = [_flag(f"f{i}") for i in range(length + 2)]
    for i in range(length - 1):  # f0 -> f1 -> ... -> f<length - 1>
        services.flag_update(actor=SYSTEM, flag=flags[i], prerequisites=[{"flag": f"f{i + 1}"}])
    # One more link at the bottom makes a chain at the limit; one above that is over it.
    services.flag_update(actor=SYSTEM, flag=flags[length - 1], prerequisites=[{"flag": f"f{length}"}])
    details = _refused(services.flag_update, actor=SYSTEM, flag=flags[length],
                       prerequisites=[{"flag": f"f{length + 1}"}])
    chain = " -> ".join(f"f{i}" for i in range(length + 2))
    assert details == {"prerequisites": [
        f"A chain of {length + 1} prerequisites, at most {length}: {chain}"]}
    # A rule's prerequisites count too.
    env = environments["production"]
    details = _refused(services.flag_rule_create, actor=SYSTEM, flag=flags[length], environment=env, kind="force",
                       variant="on", prerequisites=[{"flag": f"f{length + 1}"}])
    assert list(details) == ["prerequisites"]


# --- management API ------------------------------------------------------------------------------


def test_api_rule__backreference_pattern__400_with_a_clear_message(
    write_client: APIClient, environments: dict[str, Environment]
) -> None:
    _flag()
    body = {"kind": "force", "variant": "on", "condition": {"email": {"$regex": "^(\\w+)@\\1\\.com$"}}}

    response = write_client.post("/api/v1/flags/checkout/environments/production/rules", body, format="json")

    assert response.status_code == 400, response.content[:300]
    assert response.json()["details"] == {"condition": [
        "condition.email.$regex: backreferences such as \\1 are not supported (patterns are matched by RE2, "
        "in time linear in the text)."]}
    assert not Rule.objects.exists()


def test_api_rule__catastrophic_pattern__accepted_since_it_runs_in_linear_time(
    write_client: APIClient, environments: dict[str, Environment]
) -> None:
    _flag()
    body = {"kind": "force", "variant": "on", "condition": {"name": {"$regex": "(a+)+$"}}}
    response = write_client.post("/api/v1/flags/checkout/environments/production/rules", body, format="json")
    assert response.status_code == 201, response.content[:300]


def test_api_segment__condition_too_deep__400_naming_the_field(
    write_client: APIClient, environments: dict[str, Environment]
) -> None:
    response = write_client.post("/api/v1/segments", {"key": "deep", "condition": too_deep()}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert list(response.json()["details"]) == ["condition"]


# --- admin forms -----------------------------------------------------------------------------------


def _rule(**values: Any) -> dict[str, Any]:
    return {"position": "", "kind": "force", "enabled": "on", "description": "", "condition": "", "variant": "on",
            "percentage": "100", "split": "", "hash_attribute": "id", "experiment_key": "", "prerequisites": "",
            "seed": "", "fallback_attribute": "", "namespace": "", "phase": "", **values}


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (json.dumps({"email": {"$regex": "(a)\\1"}}), "backreferences such as \\1 are not supported"),
        (json.dumps({"email": {"$regex": "x(?!y)"}}), "lookaheads and lookbehinds such as (?= are not supported"),
        (json.dumps(too_deep()), f"nested deeper than {limits.CONDITION_MAX_DEPTH} levels"),
        (json.dumps(too_deep(301)), f"nested deeper than {limits.CONDITION_MAX_DEPTH} levels"),
        ('{"$and": [' * 5000 + "{}" + "]}" * 5000, "nested too deeply to be read"),
    ],
    ids=["backreference", "lookahead", "one-over", "301-deep", "5000-deep"],
)
def test_admin_rule__condition_beyond_the_limits__form_error_and_nothing_written(
    admin_client: Client, environments: dict[str, Environment], condition: str, message: str
) -> None:
    flag = _flag()
    state = FlagState.objects.get(flag=flag, environment__key="production")
    url = reverse("admin:flags_flagstate_change", args=[state.pk])
    data = read_form(admin_client, url, "flagstate_form")
    index = add_inline_form(data, "rules", _rule(condition=condition))
    before = snapshot()

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert any(message in e for e in field_errors(response, "condition", "rules", index)), errors_of(response)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[" * (limits.VALUE_MAX_DEPTH + 1) + "]" * (limits.VALUE_MAX_DEPTH + 1),
         f"nested deeper than {limits.VALUE_MAX_DEPTH} levels"),
        ("[" * 5000 + "]" * 5000, "nested too deeply to be read"),
    ],
    ids=["one-over", "5000-deep"],
)
def test_admin_flag_add__json_value_beyond_the_limits__form_error_and_nothing_written(
    admin_client: Client, environments: dict[str, Environment], value: str, message: str
) -> None:
    data = flag_add_data("payload", value_type="json", variants=[("plain", "{}"), ("deep", value)])
    before = snapshot()

    response = admin_client.post(reverse("admin:flags_flag_add"), data)

    assert response.status_code == 200
    assert any(message in e for e in errors_of(response)), errors_of(response)
    assert snapshot() == before


def test_admin_segment__condition_too_deep__form_error_and_nothing_written(
    admin_client: Client, environments: dict[str, Environment]
) -> None:
    data = {"key": "deep", "name": "", "description": "", "kind": "condition", "condition": json.dumps(too_deep()),
            "attribute": "id", "ids": ""}
    before = snapshot()

    response = admin_client.post(reverse("admin:flags_segment_add"), data)

    assert response.status_code == 200
    assert any("nested deeper than" in e for e in field_errors(response, "condition")), errors_of(response)
    assert snapshot() == before
