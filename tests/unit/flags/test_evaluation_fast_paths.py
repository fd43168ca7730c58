"""The evaluation's shortcuts answer as the general paths do."""

from __future__ import annotations

import math
from typing import Any

import pytest

from flags.engine.conditions import compile_condition, index_groups, js_relate
from flags.engine.evaluation import evaluate, evaluate_all
from flags.engine.types import Feature, Rule, Snapshot
from traffic.assignment.bucketing import is_included_in_rollout

VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 17, 18, 18.0, 18.5, 19, 2**53 + 1, -(2**60), math.nan, math.inf, -math.inf,
    "", "18", "19", "abc", " 18 ", "0x12", [], [18], [17, 19], {}, {"a": 1},
]
OPERANDS: list[Any] = [18, 18.5, 0, -3, 2**53, 10**300, "18", "abc", True, None, [18]]


@pytest.mark.parametrize("op", ["$lt", "$lte", "$gt", "$gte"])
@pytest.mark.parametrize("operand", OPERANDS)
def test_relation__numeric_operand_shortcut__same_as_js_relate(op: str, operand: Any) -> None:
    matcher = compile_condition({"age": {op: operand}})
    tests = {"$lt": lambda o: o < 0, "$lte": lambda o: o <= 0, "$gt": lambda o: o > 0, "$gte": lambda o: o >= 0}
    for value in VALUES:
        order = js_relate(value, operand)
        expected = order is not None and tests[op](order)
        assert matcher({"age": value}, {}) is expected, (op, operand, value)


@pytest.mark.parametrize("op", ["$inGroup", "$notInGroup"])
def test_in_group__string_shortcut__same_as_membership(op: str) -> None:
    groups = index_groups({"g": ["a", "1", 1, True, "b"]})
    matcher = compile_condition({"id": {op: "g"}})
    cases: list[tuple[Any, bool]] = [("a", True), ("c", False), ("1", True), (1, True), (True, True), (False, False),
                                     (["x", "b"], True), (["x"], False), (None, False), ({"a": 1}, False)]
    for value, member in cases:
        assert matcher({"id": value}, groups) is (member if op == "$inGroup" else not member), value
    assert matcher({"id": "a"}, {}) is (op == "$notInGroup")


def _snapshot() -> Snapshot:
    features = {
        "plain": Feature("plain", True, "on"),
        "off": Feature("off", True, "on", enabled=False, rules=(Rule(force=False, force_variant="off"),)),
        "inert": Feature("inert", 1, "one", rules=(Rule(condition={"a": 1}),)),
        "parent": Feature("parent", 2, "two", rules=(Rule(force=3, force_variant="three", coverage=0.5,
                                                           hash_version=2),)),
        "gated": Feature("gated", 4, "four", rules=(Rule(condition={"a": 1}, force=None),)),
    }
    return Snapshot("e", 1, features)


def test_evaluate_all__static_flags__same_results_as_one_by_one() -> None:
    snapshot = _snapshot()
    assert snapshot.features["plain"].static_result is snapshot.features["plain"].default_result
    assert snapshot.features["off"].static_result is not None
    assert snapshot.features["parent"].static_result is None
    for i in range(50):
        attributes = {"id": f"u{i}", "a": i % 2}
        results = evaluate_all(snapshot, attributes)
        assert results == {key: evaluate(snapshot, key, attributes) for key in snapshot.features}
    forced = evaluate_all(snapshot, {"id": "u"}, forced_values={"plain": False})
    assert forced["plain"].value is False


@pytest.mark.parametrize("hash_version", [1, 2, 3])
@pytest.mark.parametrize(("coverage", "bucket_range"), [(None, None), (0, None), (0.3, None), (None, (0.2, 0.7)),
                                                         (0.0, (0.0, 0.5))])
@pytest.mark.parametrize("unit", ["u1", "u2", "", 7, 7.5, None, True, "ü-ñ"])
def test_rollout__inlined__same_as_is_included_in_rollout(
    hash_version: int, coverage: float | None, bucket_range: tuple[float, float] | None, unit: Any
) -> None:
    rule = Rule(force=True, coverage=coverage, range=bucket_range, hash_version=hash_version, seed="s")
    snapshot = Snapshot("e", 1, {"f": Feature("f", False, "off", rules=(rule,))})
    for suffix in range(20):
        value = f"{unit}{suffix}" if isinstance(unit, str) and unit else unit
        ev = evaluate(snapshot, "f", {"id": value})
        raw = value if isinstance(value, str) else ("" if value is None or isinstance(value, bool)
                                                    else str(value) if not isinstance(value, float) else "7.5")
        expected = is_included_in_rollout("s", raw, bucket_range=bucket_range, coverage=coverage,
                                          hash_version=hash_version)
        assert (ev.value is True) is expected, (value, ev)
