"""What a readout stores: every overall view (analysis x CUPED x difference type), one view per slice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from experiments.models import ResultSnapshot
from tests.integration.pages import factories

OVERALL_MODES = ("fixed", "cuped", "sequential", "sequential_unadjusted")


def _latest(key: str) -> ResultSnapshot:
    snapshot = ResultSnapshot.objects.filter(experiment__key=key, status="success").order_by("-created_at").first()
    assert snapshot is not None
    return snapshot


def test_readout__cuped_experiment__stores_every_view_in_both_types(db: Any) -> None:
    factories.seed(factories.winner_plan(history=1))
    snapshot = _latest("checkout-redesign")
    for metric in snapshot.metrics:
        assert set(OVERALL_MODES) <= set(metric)
        for mode in OVERALL_MODES:
            types = [c["difference_type"] for c in metric[mode]]
            assert types == ["relative", "absolute"], (metric["key"], mode)  # the experiment's own type first
        assert [c["difference_type"] for c in metric["comparisons"]] == ["relative"]
        assert metric["sequential"][0]["cuped_applied"] == metric["cuped"][0]["cuped_applied"]
        assert metric["sequential_unadjusted"][0]["cuped_applied"] is False
        assert all(c["sequential"] for c in metric["sequential_unadjusted"])


def test_readout__absolute_and_relative__agree_with_the_means(db: Any) -> None:
    factories.seed(factories.winner_plan(history=1))
    purchase = _latest("checkout-redesign").metrics[0]
    control, treatment = (v["mean"] for v in purchase["variations"])
    relative, absolute = purchase["fixed"]
    assert absolute["estimate"] == pytest.approx(treatment - control)
    assert relative["estimate"] == pytest.approx(treatment / control - 1)
    assert relative["p_value"] is not None and absolute["p_value"] is not None
    assert 0 <= absolute["chance_to_win"] <= 1
    # The always-valid interval is wider than the fixed one in both types.
    for k in (0, 1):
        seq, fixed = purchase["sequential_unadjusted"][k], purchase["fixed"][k]
        assert seq["ci_high"] - seq["ci_low"] > fixed["ci_high"] - fixed["ci_low"]
    # CUPED narrows the sequential interval too.
    seq_cuped, seq_plain = purchase["sequential"][1], purchase["sequential_unadjusted"][1]
    assert seq_cuped["ci_high"] - seq_cuped["ci_low"] < seq_plain["ci_high"] - seq_plain["ci_low"]


def test_readout__absolute_experiment__absolute_first_and_headline_absolute(db: Any) -> None:
    plan = factories.flat_plan("absolute-check", history=1, extra={"difference_type": "absolute"})
    factories.seed(plan)
    metric = _latest("absolute-check").metrics[0]
    assert [c["difference_type"] for c in metric["fixed"]] == ["absolute", "relative"]
    assert [c["difference_type"] for c in metric["comparisons"]] == ["absolute"]


def test_readout__cuped_off__no_unadjusted_duplicate(db: Any) -> None:
    factories.seed(factories.flat_plan("no-cuped", history=1, cuped=False))
    metric = _latest("no-cuped").metrics[0]
    assert "sequential_unadjusted" not in metric
    assert [c["difference_type"] for c in metric["sequential"]] == ["relative", "absolute"]
    assert metric["sequential"][0]["cuped_applied"] is False


def test_readout__slices__keep_one_view_and_stay_small(db: Any) -> None:
    plan = factories.large_plan("size-check")
    plan.history = 1
    factories.seed(plan)
    snapshot = _latest("size-check")
    for entry in snapshot.slices:
        for metric in entry["metrics"]:
            assert len(metric["comparisons"]) == 2  # two treatments, one view
    # The added views cost at most twice the size of a snapshot holding one view per mode.
    single = [{**m, **{mode: m[mode][:2] for mode in ("fixed", "cuped", "sequential")}} for m in snapshot.metrics]
    for m in single:
        m.pop("sequential_unadjusted", None)
    before = len(json.dumps(single)) + len(json.dumps(snapshot.slices))
    after = len(json.dumps(snapshot.metrics)) + len(json.dumps(snapshot.slices))
    assert before < after < 2 * before
