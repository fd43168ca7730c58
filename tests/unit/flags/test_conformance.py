"""GrowthBook's shared SDK cases for conditions, features and experiments (../shared/conformance).

A case is skipped only for a reason written down in ``SKIPPED``; the count of
skips is pinned so that a new skip is a deliberate change.
"""

from __future__ import annotations

from typing import Any

import pytest

from flags.engine.conditions import compile_condition, eval_condition, index_groups
from flags.engine.evaluation import evaluate, run_experiment
from flags.engine.gbformat import experiment_from_payload, snapshot_from_payload
from tests.conformance import shared_json

CASES: dict[str, Any] = shared_json("conformance/growthbook-cases.json")
TOLERANCE = 1e-6

_BROWSER = "browser-only context field: {}"
_BANDIT = "contextual bandits (contextualVariations + contextualBandits) are not part of this service's rule model"
SKIPPED: dict[tuple[str, str], str] = {
    ("run", "globally disabled"): _BROWSER.format("enabled=false turns a whole browser SDK off"),
    ("run", "querystring force"): _BROWSER.format("url (forcing through the query string)"),
    ("run", "querystring force with inactive"): _BROWSER.format("url (forcing through the query string)"),
    ("run", "Skips experiments in QA mode"): _BROWSER.format("qaMode"),
    ("run", "Works in QA mode if forced in context"): _BROWSER.format("qaMode"),
    ("run", "Works in QA mode if forced in experiment"): _BROWSER.format("qaMode"),
    ("feature", "CB rule with empty contexts (explore) buckets on marginal weights with fallback leaf -1"): _BANDIT,
    ("feature", "CB rule with no contexts key falls back to marginal weights (fallback leaf -1)"): _BANDIT,
    ("feature", "CB rule with empty contexts uses marginal weights (fallback leaf -1)"): _BANDIT,
    ("feature", "CB rule with empty contexts is overridden by forced variation like a normal experiment"): _BANDIT,
}
MAX_SKIPS = 10


def _params(kind: str) -> list[Any]:
    params = []
    for case in CASES[kind]:
        reason = SKIPPED.get((kind, case[0]))
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(*case, id=str(case[0]), marks=marks))
    return params


def test_skipped_cases__listed__exist_and_stay_few() -> None:
    names = {(kind, case[0]) for kind in ("run", "feature") for case in CASES[kind]}
    assert set(SKIPPED) <= names
    assert len(SKIPPED) <= MAX_SKIPS


def test_skipped_cases__every_context_with_browser_fields__is_listed() -> None:
    for kind in ("run", "feature"):
        for case in CASES[kind]:
            context = case[1]
            uses_browser_field = any(k in context for k in ("url", "qaMode", "enabled"))
            uses_bandits = "contextualBandits" in context
            if uses_browser_field or uses_bandits:
                assert (kind, case[0]) in SKIPPED, case[0]


@pytest.mark.parametrize(("name", "condition", "attributes", "expected", "groups"), [
    pytest.param(c[0], c[1], c[2], c[3], c[4] if len(c) > 4 else None, id=str(c[0])) for c in CASES["evalCondition"]
])  # fmt: skip
def test_eval_condition__case__matches_growthbook(
    name: str, condition: dict[str, Any], attributes: dict[str, Any], expected: bool, groups: dict[str, Any] | None
) -> None:
    assert eval_condition(condition, attributes, groups) is expected
    # The precompiled form must agree with the one-shot form.
    assert compile_condition(condition)(attributes, index_groups(groups)) is expected


def _experiment_result(evaluation: Any) -> dict[str, Any]:
    a = evaluation.experiment
    result = {
        "featureId": a.feature_id,
        "value": a.value,
        "variationId": a.variation_id,
        "inExperiment": a.in_experiment,
        "hashUsed": a.hash_used,
        "hashAttribute": a.hash_attribute,
        "hashValue": a.hash_value,
        "key": a.variation_key,
    }
    if a.bucket is not None:
        result["bucket"] = a.bucket
    if a.variation_name is not None:
        result["name"] = a.variation_name
    return result


@pytest.mark.parametrize(("name", "context", "key", "expected"), _params("feature"))
def test_evaluate__case__matches_growthbook(
    name: str, context: dict[str, Any], key: str, expected: dict[str, Any]
) -> None:
    snapshot = snapshot_from_payload(context)
    evaluation = evaluate(
        snapshot, key, context.get("attributes", {}), forced_variations=context.get("forcedVariations")
    )

    got = {
        "value": evaluation.value,
        "on": evaluation.on,
        "off": evaluation.off,
        "source": evaluation.source.value,
        "ruleId": evaluation.rule_id or "",
    }
    assert got == {k: expected[k] for k in got}
    want_result = expected.get("experimentResult")
    if want_result is None:
        assert evaluation.experiment is None
        return
    got_result = _experiment_result(evaluation)
    bucket = got_result.pop("bucket", None)
    want = {k: v for k, v in want_result.items() if k in got_result or k == "name"}
    want.pop("bucket", None)
    assert got_result == want
    if "bucket" in want_result:
        assert bucket == pytest.approx(want_result["bucket"], abs=TOLERANCE)
    else:
        assert bucket is None
    assert evaluation.experiment is not None
    assert evaluation.experiment.key == expected["experiment"]["key"]


@pytest.mark.parametrize(("name", "context", "experiment", "value", "in_experiment", "hash_used"), _params("run"))
def test_run_experiment__case__matches_growthbook(
    name: str, context: dict[str, Any], experiment: dict[str, Any], value: Any, in_experiment: bool, hash_used: bool
) -> None:
    snapshot = snapshot_from_payload(context)
    assignment = run_experiment(
        experiment_from_payload(experiment),
        context.get("attributes", {}),
        snapshot=snapshot,
        saved_groups=context.get("savedGroups"),
        forced_variations=context.get("forcedVariations"),
    )
    assert (assignment.value, assignment.in_experiment, assignment.hash_used) == (value, in_experiment, hash_used)
