"""The GrowthBook Python SDK, fed our SDK payload, agrees with POST /api/v1/evaluate:
same value for every flag and unit, and the same variation whenever a unit is in an experiment.

The 10,000 requests go straight to the view routed at /api/v1/evaluate (the middleware stack
adds a millisecond per request and nothing to the answer); the first ones go through the
full stack too, to show both give the same body."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.test import Client, RequestFactory
from django.urls import resolve
from growthbook import GrowthBook

from tests.integration.serving.conftest import Catalog, sdk_post, unit_context

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

UNITS = 10_000


def test_sdk_payload__growthbook_sdk_and_evaluate__agree_for_10000_units(
    client: Client, catalog: Catalog, settings: Any
) -> None:
    settings.SNAPSHOT_CHECK_INTERVAL = 60.0  # nothing is written during the run
    view = resolve("/api/v1/evaluate").func
    factory = RequestFactory()
    payload = client.get(f"/api/features/{catalog.client_key}").json()
    gb = GrowthBook(features=payload["features"], saved_groups=payload.get("savedGroups"))
    mismatches: list[str] = []
    in_experiment: dict[str, int] = {}
    sources: set[tuple[str, str]] = set()
    try:
        for i in range(UNITS):
            context = unit_context(i)
            body = {"context": context, "track": False}
            request = factory.post("/api/v1/evaluate", orjson.dumps(body), content_type="application/json",
                                   HTTP_X_API_KEY=catalog.client_key)
            ours = orjson.loads(view(request).content)["flags"]
            if i < 50:
                assert sdk_post(client, "/api/v1/evaluate", body, catalog.client_key).json()["flags"] == ours
            attributes = {**context, "id": context["targetingKey"]}
            gb.set_attributes(attributes)
            for key, flag in ours.items():
                theirs = gb.eval_feature(key)
                sources.add((key, theirs.source))
                _compare(i, key, flag, theirs, mismatches)
                experiment = flag["experiment"]
                if experiment is not None and experiment["inExperiment"]:
                    in_experiment[key] = in_experiment.get(key, 0) + 1
            if len(mismatches) > 20:
                break
    finally:
        gb.destroy()
    assert not mismatches, "\n".join(mismatches[:20])
    # The catalog exercised what it is meant to: every experiment placed units, and
    # prerequisites, forced rules and defaults all decided some answers.
    assert set(in_experiment) == {"pricing", "search-ranking", "search-ui", "ratio"}
    expected = {("upsell", "prerequisite"), ("banner", "force"), ("max-upload", "force"), ("later", "defaultValue")}
    assert expected <= sources


def _compare(unit: int, key: str, ours: dict[str, Any], theirs: Any, mismatches: list[str]) -> None:
    where = f"unit-{unit} {key}:"
    if ours["value"] != theirs.value or type(ours["value"]) is not type(theirs.value):
        mismatches.append(f"{where} value {ours['value']!r} != SDK {theirs.value!r}")
        return
    if (ours["ruleId"] or "") != (theirs.ruleId or ""):
        mismatches.append(f"{where} rule {ours['ruleId']!r} != SDK {theirs.ruleId!r}")
    result = theirs.experimentResult
    experiment = ours["experiment"]
    if result is None:
        if experiment is not None and experiment["inExperiment"]:
            mismatches.append(f"{where} in experiment here, not in the SDK")
        return
    if experiment is None:
        mismatches.append(f"{where} the SDK ran experiment {result.key!r}, we did not")
        return
    if (experiment["variation"], experiment["inExperiment"]) != (result.key, result.inExperiment):
        mismatches.append(
            f"{where} variation {experiment['variation']!r}/{experiment['inExperiment']} "
            f"!= SDK {result.key!r}/{result.inExperiment}"
        )
    if result.inExperiment and ours["variant"] != result.key:
        mismatches.append(f"{where} variant {ours['variant']!r} != SDK variation {result.key!r}")
    if (experiment["hashAttribute"], experiment["hashValue"]) != (result.hashAttribute, result.hashValue):
        mismatches.append(f"{where} hash {experiment['hashAttribute']}={experiment['hashValue']!r} != SDK")
