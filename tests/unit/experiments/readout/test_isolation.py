"""One analysis whose sums the engine refuses is reported on its own row, in words that say what
is wrong; the rest of the readout is computed as if it were not there."""

from __future__ import annotations

from dataclasses import replace

import stats
from experiments.readout import (
    GroupSums,
    ReadoutInput,
    SliceSums,
    readout_compute,
    readout_from_json,
    readout_to_json,
)
from tests.unit.experiments.readout.builders import readout_input

REVENUE = 1


def _with_arm(group: GroupSums, metric: int, arm: int, data: stats.VariationData) -> GroupSums:
    metrics = list(group.metrics)
    arms = list(metrics[metric])
    arms[arm] = data
    metrics[metric] = tuple(arms)
    return replace(group, metrics=tuple(metrics))


def _broken_slice(data: ReadoutInput, g: int, arm: stats.VariationData) -> ReadoutInput:
    part = data.slices[g]
    broken = SliceSums(part.attribute, part.value, _with_arm(part.sums, REVENUE, 1, arm))
    return replace(data, slices=tuple(broken if k == g else s for k, s in enumerate(data.slices)))


def test_readout_compute__one_slice_analysis_refused__only_its_row_says_so() -> None:
    data = readout_input(slices=[("country", "DE", (2000, 2100)), ("country", "FR", (3000, 2900))])
    arm = data.slices[1].sums.metrics[REVENUE][1]
    broken = _broken_slice(data, 1, replace(arm, main_sum_squares=None))
    clean = readout_compute(data)

    readout = readout_compute(broken)

    fr = readout.slices[1].metric("revenue")
    assert fr is not None
    assert fr.error == "treatment: main_sum_squares is required"
    assert [c.error for c in fr.comparisons] == [stats.ErrorCode.INVALID_INPUT]
    assert all(c.estimate is None and c.p_value is None for c in fr.comparisons)
    # Everything else is the readout of the clean input, but for the heterogeneity test of revenue
    # over country, which leaves the refused value out.
    assert [replace(m, heterogeneity=()) for m in readout.metrics] == [
        replace(m, heterogeneity=()) for m in clean.metrics]
    assert [m.heterogeneity for m in readout.metrics if m.key != "revenue"] == [
        m.heterogeneity for m in clean.metrics if m.key != "revenue"]
    tested = readout.metrics[REVENUE].heterogeneity_of("treatment", "country")
    assert tested is not None and tested.q is None and [v.p_value for v in tested.values] == [None, None]
    assert readout.slices[0] == clean.slices[0]
    assert readout.slices[1].metric("buy") == clean.slices[1].metric("buy")
    warning = next(w for w in readout.warnings if w.code == "analysis_errors")
    assert "revenue (country = FR): treatment: main_sum_squares is required" in warning.message
    assert "analysis_errors" not in {w.code for w in clean.warnings}


def test_readout_compute__non_finite_sum__says_not_finite_not_missing() -> None:
    data = readout_input(slices=[("country", "DE", (2000, 2100))])
    arm = data.slices[0].sums.metrics[REVENUE][1]
    readout = readout_compute(_broken_slice(data, 0, replace(arm, main_sum=float("inf"))))
    metric = readout.slices[0].metric("revenue")
    assert metric is not None and metric.error == "treatment: main_sum must be finite"


def test_readout_compute__overall_analysis_refused__metric_row_marked_others_computed() -> None:
    data = readout_input()
    arm = data.overall.metrics[REVENUE][0]
    broken = replace(data, overall=_with_arm(data.overall, REVENUE, 0, replace(arm, main_sum=float("nan"))))
    clean = readout_compute(data)

    readout = readout_compute(broken)

    revenue = readout.metric("revenue")
    assert revenue is not None
    assert revenue.error is not None and revenue.error.startswith("control: main_sum")
    for mode in ("fixed", "cuped", "sequential", "sequential_unadjusted"):
        assert {c.error for c in revenue.mode(mode)} == {stats.ErrorCode.INVALID_INPUT}
    assert [c.error for c in revenue.comparisons] == [stats.ErrorCode.INVALID_INPUT]
    assert readout.metric("buy") == clean.metric("buy")
    assert readout.metric("errors") == clean.metric("errors")


def test_readout_json__row_errors__kept_through_the_stored_document() -> None:
    data = readout_input(slices=[("country", "DE", (2000, 2100))])
    arm = data.slices[0].sums.metrics[REVENUE][1]
    readout = readout_compute(_broken_slice(data, 0, replace(arm, main_sum_squares=None)))
    doc = readout_to_json(readout)
    assert doc["slices"][0]["metrics"][1]["error"] == "treatment: main_sum_squares is required"
    assert "error" not in doc["slices"][0]["metrics"][0]
    assert all("error" not in m for m in doc["metrics"])
    assert readout_from_json(doc) == readout
    assert readout_to_json(readout_from_json(doc)) == doc
