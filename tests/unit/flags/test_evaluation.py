from __future__ import annotations

import pickle

import pytest

from flags.engine.evaluation import evaluate, evaluate_all, run_experiment
from flags.engine.types import (
    UNSET,
    Evaluation,
    Experiment,
    Feature,
    ParentCondition,
    Reason,
    Rule,
    Snapshot,
    Source,
    VariationMeta,
)
from traffic.assignment.hashing import hash_v2

T0 = 1_700_000_000.0


def snap(*features: Feature, groups: dict[str, tuple[object, ...]] | None = None) -> Snapshot:
    return Snapshot("production", 7, {f.key: f for f in features}, groups or {})


CHECKOUT = Feature(
    key="checkout",
    default_value="classic",
    default_variant="control",
    value_type="string",
    rules=(
        Rule(id="r-staff", condition={"email": {"$regex": "@corp\\.com$"}}, force="new", force_variant="new"),
        Rule(
            id="r-exp",
            key="checkout-test",
            seed="checkout-test",
            hash_version=2,
            variations=("classic", "new"),
            weights=(0.5, 0.5),
            meta=(VariationMeta("control", "Control"), VariationMeta("treatment", "Treatment")),
        ),
    ),
)


def test_evaluate__unknown_flag__is_an_error_with_flag_not_found() -> None:
    result = evaluate(snap(), "nope", {"id": "u1"})
    assert result == Evaluation("nope", None, None, Reason.ERROR, Source.UNKNOWN_FEATURE, error_code="FLAG_NOT_FOUND")


def test_evaluate__disabled_flag__serves_default_with_reason_disabled() -> None:
    feature = Feature("kill", default_value=False, default_variant="off", rules=(Rule(force=True),), enabled=False)
    result = evaluate(snap(feature), "kill", {"id": "u1"})
    assert (result.value, result.variant, result.reason, result.source) == (
        False,
        "off",
        Reason.DISABLED,
        Source.DEFAULT_VALUE,
    )


def test_evaluate__flag_without_rules__is_static_default() -> None:
    result = evaluate(snap(Feature("plain", default_value=3, default_variant="three")), "plain", {})
    assert (result.value, result.variant, result.reason) == (3, "three", Reason.STATIC)


def test_evaluate__force_rule_with_condition__is_targeting_match_with_variant_key() -> None:
    result = evaluate(snap(CHECKOUT), "checkout", {"id": "u1", "email": "ann@corp.com"})
    assert (result.value, result.variant, result.reason, result.rule_id) == (
        "new",
        "new",
        Reason.TARGETING_MATCH,
        "r-staff",
    )


def test_evaluate__force_rule_without_condition__is_static() -> None:
    feature = Feature("f", default_value=False, rules=(Rule(id="all", force=True, force_variant="on"),))
    assert evaluate(snap(feature), "f", {}).reason is Reason.STATIC


def test_evaluate__rollout__is_split_and_follows_the_hash() -> None:
    rule = Rule(id="ten", force=True, force_variant="on", coverage=0.1, hash_version=2, seed="f")
    feature = Feature("f", default_value=False, default_variant="off", rules=(rule,))
    for unit in ("u1", "u2", "u3", "u4", "u5", "u6"):
        result = evaluate(snap(feature), "f", {"id": unit})
        inside = hash_v2("f", unit) < 0.1
        assert result.value is inside
        assert result.reason is (Reason.SPLIT if inside else Reason.DEFAULT)
        assert result.variant == ("on" if inside else "off")


def test_evaluate__experiment__reports_variant_key_and_assignment() -> None:
    result = evaluate(snap(CHECKOUT), "checkout", {"id": "u42"})
    expected_index = 0 if hash_v2("checkout-test", "u42") < 0.5 else 1
    assert result.reason is Reason.SPLIT
    assert result.source is Source.EXPERIMENT
    assert result.variant == ("control", "treatment")[expected_index]
    assert result.experiment is not None
    assert result.experiment.variation_id == expected_index
    assert result.experiment.variation_name == ("Control", "Treatment")[expected_index]
    assert result.experiment.key == "checkout-test"
    assert result.experiment.feature_id == "checkout"
    assert result.experiment.bucket == pytest.approx(hash_v2("checkout-test", "u42"))


def test_evaluate__experiment_without_meta__uses_the_index_as_variant_key() -> None:
    feature = Feature("f", default_value=0, rules=(Rule(variations=(10, 20, 30)),))
    result = evaluate(snap(feature), "f", {"id": "u1"})
    assert result.variant == str(result.value // 10 - 1)


def test_evaluate__unit_without_id__falls_through_experiment_to_default() -> None:
    result = evaluate(snap(CHECKOUT), "checkout", {"email": "x@y.z"})
    assert (result.value, result.variant, result.reason) == ("classic", "control", Reason.DEFAULT)


def test_evaluate__forced_variation__bypasses_the_hash() -> None:
    result = evaluate(snap(CHECKOUT), "checkout", {"id": "u1"}, forced_variations={"checkout-test": 1})
    assert result.variant == "treatment"
    assert result.experiment is not None
    assert result.experiment.hash_used is False


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "now", "active"),
    [
        (T0, None, T0 - 1, False),
        (T0, None, T0, True),
        (None, T0, T0 - 1, True),
        (None, T0, T0, False),
        (T0, T0 + 60, T0 + 30, True),
        (T0, T0 + 60, T0 + 90, False),
    ],
)
def test_evaluate__scheduled_rule__applies_only_inside_its_window(
    starts_at: float | None, ends_at: float | None, now: float, active: bool
) -> None:
    rule = Rule(id="sched", force=True, force_variant="on", starts_at=starts_at, ends_at=ends_at)
    feature = Feature("promo", default_value=False, default_variant="off", rules=(rule,))
    result = evaluate(snap(feature), "promo", {"id": "u1"}, now=now)
    assert result.value is active
    assert result.rule_id == ("sched" if active else None)


def test_evaluate__ramp_of_scheduled_rollouts__widens_over_time() -> None:
    steps = [(T0, T0 + 10, 0.1), (T0 + 10, T0 + 20, 0.5), (T0 + 20, None, 1.0)]
    rules = tuple(
        Rule(force=True, coverage=c, hash_version=2, seed="ramp", starts_at=s, ends_at=e) for s, e, c in steps
    )
    feature = Feature("ramp", default_value=False, rules=rules)
    units = [f"u{i}" for i in range(2000)]
    shares = [
        sum(evaluate(snap(feature), "ramp", {"id": u}, now=t).value for u in units) / 2000
        for t in (T0 + 5, T0 + 15, T0 + 25)
    ]
    assert shares[0] < shares[1] < shares[2] == 1.0


def test_evaluate__gate_prerequisite_off__blocks_the_flag() -> None:
    parent = Feature("parent", default_value=False)
    child = Feature(
        "child",
        default_value="x",
        rules=(Rule(parent_conditions=(ParentCondition("parent", {"value": True}, gate=True),)), Rule(force="y")),
    )
    result = evaluate(snap(parent, child), "child", {"id": "u1"})
    assert (result.value, result.source, result.reason) == (None, Source.PREREQUISITE, Reason.DEFAULT)


def test_evaluate__non_gate_prerequisite_off__skips_only_that_rule() -> None:
    parent = Feature("parent", default_value=False)
    child = Feature(
        "child",
        default_value="x",
        rules=(Rule(id="needs-parent", force="y", parent_conditions=(ParentCondition("parent", {"value": True}),)),),
    )
    assert evaluate(snap(parent, child), "child", {"id": "u1"}).value == "x"


def test_evaluate__prerequisite_cycle__is_an_error_not_a_crash() -> None:
    a = Feature("a", True, rules=(Rule(parent_conditions=(ParentCondition("b", {"value": True}, gate=True),)),))
    b = Feature("b", True, rules=(Rule(parent_conditions=(ParentCondition("a", {"value": True}, gate=True),)),))
    results = evaluate_all(snap(a, b), {"id": "u1"})
    for key in ("a", "b"):
        assert results[key].source is Source.CYCLIC_PREREQUISITE
        assert results[key].reason is Reason.ERROR


def test_evaluate_all__every_flag__matches_single_evaluations() -> None:
    parent = Feature("parent", default_value=True)
    child = Feature("child", 0, rules=(Rule(force=1, parent_conditions=(ParentCondition("parent", {"value": True}),)),))
    snapshot = snap(CHECKOUT, parent, child)
    attributes = {"id": "u9", "email": "x@corp.com"}
    everything = evaluate_all(snapshot, attributes)
    assert set(everything) == {"checkout", "parent", "child"}
    for key, result in everything.items():
        assert result == evaluate(snapshot, key, attributes)
    assert set(evaluate_all(snapshot, attributes, keys=["child", "missing"])) == {"child", "missing"}


def test_evaluate__saved_group_condition__uses_snapshot_groups() -> None:
    feature = Feature("beta", False, rules=(Rule(force=True, condition={"id": {"$inGroup": "testers"}}),))
    snapshot = snap(feature, groups={"testers": ("u1", "u2")})
    assert evaluate(snapshot, "beta", {"id": "u2"}).value is True
    assert evaluate(snapshot, "beta", {"id": "u3"}).value is False


def test_evaluate__passthrough_variation__continues_to_next_rule() -> None:
    holdout = Rule(key="holdout", hash_version=2, variations=(1, 2), ranges=((0.0, 0.0), (0.0, 1.0)),
                   meta=(VariationMeta("held"), VariationMeta("pass", passthrough=True)))  # fmt: skip
    feature = Feature("f", 0, rules=(holdout, Rule(force=9)))
    assert evaluate(snap(feature), "f", {"id": "u1"}).value == 9


def test_evaluate__passthrough_variation__the_unit_is_counted_where_it_passed() -> None:
    guard = Rule(key="guard", hash_version=2, variations=(0, 1), weights=(0.5, 0.5), seed="s",
                 meta=(VariationMeta("rest", passthrough=True), VariationMeta("new")))  # fmt: skip
    feature = Feature("f", 0, rules=(guard, Rule(force=9)))
    results = {uid: evaluate(snap(feature), "f", {"id": uid}) for uid in (f"u{i}" for i in range(40))}
    passed = [r for r in results.values() if r.passthrough]
    served = [r for r in results.values() if r.experiment is not None]
    assert passed and served and len(passed) + len(served) == 40
    for result in passed:
        assert result.value == 9 and result.experiment is None
        [assignment] = result.passthrough
        assert (assignment.key, assignment.variation_key, assignment.passthrough) == ("guard", "rest", True)
    assert all(r.value == 1 and not r.passthrough for r in served)


def test_run_experiment__inactive_or_forced__follow_growthbook_rules() -> None:
    exp = Experiment(key="e", variations=("a", "b"), active=False)
    assert run_experiment(exp, {"id": "u1"}).in_experiment is False
    forced = Experiment(key="e", variations=("a", "b"), force=1)
    result = run_experiment(forced, {"id": "u1"})
    assert (result.value, result.in_experiment, result.hash_used) == ("b", True, False)


def test_snapshot__pickled__round_trips_with_working_matchers() -> None:
    snapshot = snap(CHECKOUT, groups={"g": (1, 2)})
    copy = pickle.loads(pickle.dumps(snapshot))
    assert copy == snapshot
    assert copy.features["checkout"].rules[1].force is UNSET
    attributes = {"id": "u5", "email": "a@corp.com"}
    assert evaluate(copy, "checkout", attributes) == evaluate(snapshot, "checkout", attributes)
