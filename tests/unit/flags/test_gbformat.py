from __future__ import annotations

import json
from typing import Any

import pytest

from flags.engine.evaluation import evaluate_all
from flags.engine.gbformat import next_schedule_change, snapshot_from_payload, snapshot_to_payload
from flags.engine.types import Feature, ParentCondition, Rule, Snapshot, VariationMeta
from traffic.assignment.types import Filter, Namespace

T0 = 1_700_000_000.0

FULL = Snapshot(
    environment="production",
    version=12,
    date_updated="2024-06-01T12:00:00Z",
    saved_groups={"beta": ("u1", 2, True)},
    features={
        "banner": Feature("banner", default_value=False, default_variant="off", value_type="boolean", rules=(
            Rule(id="r1", condition={"country": {"$in": ["US", "CA"]}}, force=True, force_variant="on"),
            Rule(id="r2", force=True, force_variant="on", coverage=0.1, hash_attribute="device",
                 fallback_attribute="id", hash_version=2, seed="banner-rollout", range=(0.0, 0.1)),
            Rule(id="r3", force=True, force_variant="on", starts_at=T0, ends_at=T0 + 3600),
        )),
        "pricing": Feature("pricing", default_value={"price": 10}, default_variant="base", value_type="json", rules=(
            Rule(id="exp", key="pricing-test", name="Pricing", phase="2", seed="pricing-test", hash_version=2,
                 variations=({"price": 10}, {"price": 12}), weights=(0.4, 0.6), coverage=0.8,
                 namespace=Namespace("layer-a", 0.0, 0.5),
                 filters=(Filter(seed="holdout", ranges=((0.05, 1.0),), attribute="id", hash_version=1),),
                 meta=(VariationMeta("base", "Base"), VariationMeta("high", None, passthrough=True)),
                 parent_conditions=(ParentCondition("banner", {"value": True}, gate=True),)),
            Rule(id="ranges", variations=(1, 2), ranges=((0.0, 0.3), (0.3, 0.6)), hash_attribute="company"),
        )),
        "kill": Feature("kill", default_value="safe", default_variant="safe", value_type="string", enabled=False),
        "limit": Feature("limit", default_value=5, value_type="number"),
    },
)  # fmt: skip


def test_snapshot_to_payload__round_trip__is_lossless() -> None:
    payload = snapshot_to_payload(FULL)
    again = snapshot_from_payload(json.loads(json.dumps(payload)), environment="production", version=12)
    assert again == FULL
    assert snapshot_to_payload(again) == payload


def test_snapshot_to_payload__shape__is_growthbooks() -> None:
    payload = snapshot_to_payload(FULL)
    assert set(payload) == {"features", "savedGroups", "dateUpdated"}
    rule = payload["features"]["pricing"]["rules"][0]
    assert rule["key"] == "pricing-test"
    assert rule["hashVersion"] == 2
    assert rule["namespace"] == ["layer-a", 0.0, 0.5]
    assert rule["meta"] == [{"key": "base", "name": "Base"}, {"key": "high", "passthrough": True}]
    assert rule["parentConditions"] == [{"id": "banner", "condition": {"value": True}, "gate": True}]
    assert rule["filters"] == [{"seed": "holdout", "ranges": [[0.05, 1.0]], "attribute": "id", "hashVersion": 1}]
    assert payload["savedGroups"] == {"beta": ["u1", 2, True]}


def test_snapshot_to_payload__disabled_flag__carries_only_its_default() -> None:
    assert snapshot_to_payload(FULL)["features"]["kill"] == {
        "defaultValue": "safe",
        "valueType": "string",
        "defaultVariant": "safe",
        "enabled": False,
    }


@pytest.mark.parametrize(("now", "kept"), [(T0 - 1, ["r1", "r2"]), (T0 + 1, ["r1", "r2", "r3"])])
def test_snapshot_to_payload__with_now__drops_rules_outside_their_window(now: float, kept: list[str]) -> None:
    rules = snapshot_to_payload(FULL, now=now)["features"]["banner"]["rules"]
    assert [r["id"] for r in rules] == kept
    assert all("startsAt" not in r and "endsAt" not in r for r in rules)


def test_next_schedule_change__pending_window__is_the_next_boundary() -> None:
    assert next_schedule_change(FULL, T0 - 10) == T0
    assert next_schedule_change(FULL, T0 + 10) == T0 + 3600
    assert next_schedule_change(FULL, T0 + 7200) is None


def test_snapshot_from_payload__growthbook_defaults__are_filled_in() -> None:
    snapshot = snapshot_from_payload({"features": {"f": {"defaultValue": "x", "rules": [{"variations": [1, 2]}]}}})
    feature = snapshot.features["f"]
    assert feature.value_type == "string"
    rule = feature.rules[0]
    assert (rule.hash_attribute, rule.hash_version, rule.coverage, rule.key) == ("id", 1, None, None)


def _sdk_values(payload: dict[str, Any], attributes: dict[str, Any]) -> dict[str, Any]:
    growthbook = pytest.importorskip("growthbook")
    sdk = growthbook.GrowthBook(
        attributes=attributes, features=payload["features"], saved_groups=payload.get("savedGroups")
    )
    return {key: sdk.eval_feature(key).value for key in payload["features"]}


def test_snapshot_to_payload__fed_to_growthbook_sdk__gives_the_same_values() -> None:
    payload = snapshot_to_payload(FULL, now=T0 + 1)
    for i in range(300):
        attributes = {"id": f"u{i}", "device": f"d{i}", "company": f"c{i % 7}", "country": ("US", "FR")[i % 2]}
        ours = {key: ev.value for key, ev in evaluate_all(FULL, attributes, now=T0 + 1).items()}
        assert ours == _sdk_values(payload, attributes), attributes


SCHEDULED = Snapshot(
    environment="production",
    version=3,
    date_updated="2023-11-14T00:00:00.000Z",  # before T0 (2023-11-14T22:13:20Z)
    features={
        "banner": Feature("banner", default_value=False, default_variant="off", value_type="boolean", rules=(
            Rule(id="window", force=True, force_variant="on", starts_at=T0, ends_at=T0 + 3600),
        )),
    },
)  # fmt: skip


def test_snapshot_to_payload__scheduled_boundary_passed__moves_date_updated() -> None:
    # GrowthBook SDKs ignore a fetched payload whose dateUpdated equals their cached one.
    before = snapshot_to_payload(SCHEDULED, now=T0 - 1)
    started = snapshot_to_payload(SCHEDULED, now=T0 + 1)
    ended = snapshot_to_payload(SCHEDULED, now=T0 + 3601)
    assert before["dateUpdated"] == "2023-11-14T00:00:00.000Z"
    assert started["dateUpdated"] == "2023-11-14T22:13:20.000Z"
    assert ended["dateUpdated"] == "2023-11-14T23:13:20.000Z"
    assert len({before["dateUpdated"], started["dateUpdated"], ended["dateUpdated"]}) == 3


def test_snapshot_to_payload__write_after_boundary__keeps_the_write_time() -> None:
    payload = snapshot_to_payload(FULL, now=T0 + 10)
    assert payload["dateUpdated"] == "2024-06-01T12:00:00Z"
    assert snapshot_to_payload(FULL)["dateUpdated"] == "2024-06-01T12:00:00Z"
