"""Rows -> snapshot, on unsaved model instances (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flags.engine.evaluation import evaluate
from flags.engine.gbformat import snapshot_from_payload, snapshot_to_payload
from flags.engine.types import UNSET, ParentCondition, Reason, Snapshot, Source
from flags.mappers import snapshot_from_rows
from flags.models import Flag, FlagState, Rule, Segment, Variant
from traffic.assignment.types import Namespace

BOOL = [Variant(key="off", value=False), Variant(key="on", value=True)]
SEGMENTS = {
    "beta": Segment(key="beta", kind=Segment.Kind.IDS, attribute="id", ids=["u-1", "u-2"]),
    "eu": Segment(key="eu", kind=Segment.Kind.CONDITION, condition={"country": {"$in": ["DE", "FR"]}}),
    "big": Segment(key="big", kind=Segment.Kind.IDS, attribute="company", ids=["acme"]),
}


def _flag(key: str, *, value_type: str = "boolean", prerequisites: Any = (), archived: bool = False) -> Flag:
    return Flag(key=key, value_type=value_type, prerequisites=list(prerequisites),
                archived_at=datetime(2026, 1, 1, tzinfo=UTC) if archived else None)


def _state(*, enabled: bool = True, default: str = "off", off: str = "off") -> FlagState:
    return FlagState(enabled=enabled, default_variant=default, off_variant=off)


def _rule(uid: str, **fields: Any) -> Rule:
    return Rule(uid=uid, **fields)


def _snapshot(*rows: tuple[Flag, FlagState, list[Variant], list[Rule]]) -> Snapshot:
    return snapshot_from_rows(environment="production", version=7, updated_at=datetime(2026, 5, 1, tzinfo=UTC),
                              flags=rows, segments=SEGMENTS)


def test_snapshot_from_rows__disabled_flag__serves_off_variant_without_rules() -> None:
    snap = _snapshot((_flag("f"), _state(enabled=False, default="on", off="off"), BOOL,
                      [_rule("r1", kind="force", variant="on")]))
    feature = snap.features["f"]
    assert (feature.enabled, feature.default_value, feature.default_variant, feature.rules) == (False, False, "off", ())
    result = evaluate(snap, "f", {"id": "u-1"})
    assert (result.value, result.variant, result.reason) == (False, "off", Reason.DISABLED)


def test_snapshot_from_rows__archived_flag__left_out() -> None:
    snap = _snapshot((_flag("gone", archived=True), _state(), BOOL, []), (_flag("kept"), _state(), BOOL, []))
    assert list(snap.features) == ["kept"]
    assert (snap.version, snap.environment, snap.date_updated) == (7, "production", "2026-05-01T00:00:00.000Z")


def test_snapshot_from_rows__flag_prerequisite__leading_gate_rule() -> None:
    flag = _flag("child", prerequisites=[{"flag": "parent"}, {"flag": "other", "condition": {"value": "x"}}])
    snap = _snapshot((flag, _state(default="on"), BOOL, [_rule("r1", kind="force", variant="on")]))
    gate, forced = snap.features["child"].rules
    assert gate.parent_conditions == (
        ParentCondition(id="parent", condition={"value": True}, gate=True),
        ParentCondition(id="other", condition={"value": "x"}, gate=True),
    )
    assert gate.force is UNSET and gate.variations is None
    assert forced.id == "r1"
    blocked = evaluate(snap, "child", {"id": "u-1"})
    assert (blocked.value, blocked.source) == (None, Source.PREREQUISITE)


def test_snapshot_from_rows__rule_prerequisite__not_a_gate() -> None:
    rule = _rule("r1", kind="force", variant="on", prerequisites=[{"flag": "parent", "condition": {"value": True}}])
    snap = _snapshot((_flag("child"), _state(), BOOL, [rule]))
    assert snap.features["child"].rules[0].parent_conditions == (
        ParentCondition(id="parent", condition={"value": True}, gate=False),
    )
    assert evaluate(snap, "child", {"id": "u-1"}).value is False  # parent unknown: the rule is skipped


def test_snapshot_from_rows__segments__saved_groups_and_inlined_conditions_under_and() -> None:
    rule = _rule("r1", kind="force", variant="on", condition={"plan": "pro"}, segments=["beta", "eu", "big"])
    snap = _snapshot((_flag("f"), _state(), BOOL, [rule]))
    assert snap.features["f"].rules[0].condition == {
        "$and": [
            {"plan": "pro"},
            {"id": {"$inGroup": "beta"}},
            {"country": {"$in": ["DE", "FR"]}},
            {"company": {"$inGroup": "big"}},
        ]
    }
    assert snap.saved_groups == {"beta": ("u-1", "u-2"), "big": ("acme",)}
    assert evaluate(snap, "f", {"id": "u-1", "plan": "pro", "country": "DE", "company": "acme"}).value is True
    assert evaluate(snap, "f", {"id": "u-3", "plan": "pro", "country": "DE", "company": "acme"}).value is False


def test_snapshot_from_rows__single_segment__used_alone() -> None:
    snap = _snapshot((_flag("f"), _state(), BOOL, [_rule("r1", kind="force", variant="on", segments=["beta"])]))
    assert snap.features["f"].rules[0].condition == {"id": {"$inGroup": "beta"}}


def test_snapshot_from_rows__unknown_segment_or_variant_or_disabled_rule__rule_skipped() -> None:
    rules = [
        _rule("r1", kind="force", variant="on", segments=["deleted"]),
        _rule("r2", kind="force", variant="missing"),
        _rule("r3", kind="force", variant="on", enabled=False),
        _rule("r4", kind="experiment", variations=["off", "gone"], weights=[0.5, 0.5]),
        _rule("r5", kind="force", variant="on"),
    ]
    snap = _snapshot((_flag("f"), _state(), BOOL, rules))
    assert [r.id for r in snap.features["f"].rules] == ["r5"]


def test_snapshot_from_rows__force_rollout_experiment__growthbook_fields() -> None:
    variants = [Variant(key="a", value={"x": 1}), Variant(key="b", value={"x": 2}, name="Bee")]
    starts = datetime(2026, 1, 1, tzinfo=UTC)
    rules = [
        _rule("r1", kind="force", variant="b", coverage=0.5, starts_at=starts),
        _rule("r2", kind="rollout", variant="b", coverage=0.25, hash_attribute="company", fallback_attribute="id"),
        _rule("r3", kind="experiment", variations=["a", "b"], weights=[0.4, 0.6], coverage=0.9, seed="s",
              experiment_key="exp", namespace=["layer", 0.0, 0.5], phase="2", hash_attribute="id"),
        _rule("r4", kind="experiment", variations=["a", "b"], weights=[0.5, 0.5]),
    ]
    snap = _snapshot((_flag("f", value_type="json"), _state(default="a", off="a"), variants, rules))
    forced, rollout, experiment, unnamed = snap.features["f"].rules
    # A force rule with a coverage is a percentage rollout, as GrowthBook reads it.
    assert (forced.force, forced.force_variant, forced.coverage, forced.starts_at) == (
        {"x": 2}, "b", 0.5, starts.timestamp())
    assert (forced.seed, forced.hash_attribute, forced.hash_version, forced.reason) == ("f", "id", 2, Reason.SPLIT)
    assert (rollout.force_variant, rollout.coverage, rollout.hash_attribute, rollout.fallback_attribute,
            rollout.seed, rollout.hash_version) == ("b", 0.25, "company", "id", "f", 2)
    assert experiment.variations == ({"x": 1}, {"x": 2})
    assert (experiment.weights, experiment.coverage, experiment.seed, experiment.key, experiment.phase) == (
        (0.4, 0.6), 0.9, "s", "exp", "2")
    assert experiment.namespace == Namespace("layer", 0.0, 0.5)
    assert [(m.key, m.name) for m in experiment.meta or ()] == [("a", None), ("b", "Bee")]
    assert experiment.hash_version == 2
    assert (unnamed.key, unnamed.seed) == ("r4", "f")
    assert snap.features["f"].value_type == "json"


def test_snapshot_from_rows__through_the_disk_format__same_evaluations() -> None:
    rules = [
        _rule("r1", kind="force", variant="on", segments=["beta"]),
        _rule("r2", kind="experiment", variations=["off", "on"], weights=[0.3, 0.7], experiment_key="e",
              namespace=["ns", 0.1, 0.9], starts_at=datetime(2025, 1, 1, tzinfo=UTC)),
        _rule("r3", kind="rollout", variant="on", coverage=0.5),
    ]
    snap = _snapshot(
        (_flag("f", prerequisites=[{"flag": "g"}]), _state(), BOOL, rules),
        (_flag("g"), _state(default="on"), BOOL, []),
        (_flag("h"), _state(enabled=False, default="on"), BOOL, []),
    )
    copy = snapshot_from_payload(snapshot_to_payload(snap), environment="production", version=7)
    for i in range(500):
        attributes = {"id": f"u-{i}"}
        for key in snap.features:
            assert evaluate(copy, key, attributes) == evaluate(snap, key, attributes)


def test_snapshot_from_rows__force_rule_coverage__hashed_share_and_full_coverage_for_everyone() -> None:
    rules = [_rule("r1", kind="force", variant="on", coverage=0.3, seed="f")]
    snap = _snapshot((_flag("f"), _state(), BOOL, rules))
    served = sum(evaluate(snap, "f", {"id": f"u-{i}"}).value for i in range(4000))
    assert 0.27 * 4000 < served < 0.33 * 4000
    assert evaluate(snap, "f", {}).value is False  # no hash attribute: not in the rollout
    # The same rollout as a rollout rule with the same seed.
    as_rollout = _snapshot((_flag("f"), _state(), BOOL, [_rule("r1", kind="rollout", variant="on", coverage=0.3,
                                                                seed="f")]))
    assert all(evaluate(snap, "f", {"id": f"u-{i}"}).value == evaluate(as_rollout, "f", {"id": f"u-{i}"}).value
               for i in range(500))
    full = _snapshot((_flag("f"), _state(), BOOL, [_rule("r1", kind="force", variant="on", coverage=1.0)]))
    assert full.features["f"].rules[0].coverage is None
    assert evaluate(full, "f", {}).value is True  # full coverage needs no id
