"""Stored readout documents of every version through `readout_from_json`, and what the pure
readers (the result pages' view models) get from them; `to_json` round trips; the parts of a
document the page queries select."""

from __future__ import annotations

import json
from typing import Any

import pytest

from experiments.readout import (
    SCHEMA_VERSION,
    document_version,
    readout_compute,
    readout_from_json,
    readout_to_json,
)
from pages.presentation.viewmodels import choose_toggles, parse_snapshot, result_rows, slice_rows
from tests.unit.experiments.readout.builders import readout_input
from tests.unit.experiments.readout.stored import VERSIONS, stored


@pytest.mark.parametrize("name", list(VERSIONS))
def test_from_json__every_stored_version__told_apart_and_read(name: str) -> None:
    load, version = VERSIONS[name]
    doc = load()
    assert document_version(doc) == version
    readout = readout_from_json(doc)
    assert readout.schema_version == SCHEMA_VERSION
    assert [m.key for m in readout.metrics] == ["buy", "errors"]
    assert readout.headline == "sequential" and readout.guardrail_status == "ok"
    buy = readout.metrics[0]
    assert buy.numbers("sequential", "relative")["treatment"].significant is True
    assert buy.numbers("fixed", "relative")["treatment"].significant is None
    assert [a.key for a in buy.variations] == ["control", "treatment"]
    assert readout.slices[0].metric("buy") is not None
    assert readout.inputs is not None and readout.inputs.metrics["buy"].overall[0].users == 1200
    # Written again, a document of any version is a current one, and reads the same.
    again = readout_to_json(readout)
    assert again["schema_version"] == SCHEMA_VERSION and document_version(again) == SCHEMA_VERSION
    assert readout_from_json(again) == readout


@pytest.mark.parametrize("name", list(VERSIONS))
def test_readers__every_stored_version__rows_toggles_and_slices(name: str) -> None:
    load, version = VERSIONS[name]
    snapshot = parse_snapshot({"id": 7, "status": "success", **load()})
    default = choose_toggles(snapshot, cuped=None, relative=None)
    assert (default.analysis, default.mode, default.difference_type) == ("sequential", "sequential", "relative")
    rows = result_rows(snapshot, default, ("primary",))
    assert len(rows) == 1 and rows[0].numbers is not None and rows[0].tone == "good"
    assert rows[0].verdict == "better (significant)"
    unadjusted = choose_toggles(snapshot, cuped=False, relative=None)
    absolute = choose_toggles(snapshot, cuped=True, relative=False, analysis="fixed")
    if version == 1:
        # Stored before the unadjusted sequential analysis was kept: shown with CUPED, and said so.
        assert unadjusted.mode == "sequential" and "not available for this readout" in unadjusted.cuped_note
    else:
        assert unadjusted.mode == "sequential_unadjusted" and unadjusted.cuped_note == ""
    if name == "v1 lists":
        assert absolute.difference_type == "relative" and "relative results only" in absolute.type_note
    else:
        assert absolute.difference_type == "absolute" and absolute.type_note == ""
        estimate = result_rows(snapshot, absolute, ("primary",))[0].numbers
        assert estimate is not None and estimate.difference_type == "absolute" and not estimate.sequential
    sliced = slice_rows([s for s in snapshot.readout.slices if s.value == "DE"], metric=snapshot.metrics[0],
                        snapshot=snapshot)
    assert [(r.value, r.variation) for r in sliced] == [("DE", "treatment")] and sliced[0].numbers is not None


def test_to_json__current_document__given_back_unchanged() -> None:
    doc = stored("v3.json")
    assert readout_to_json(readout_from_json(doc)) == doc
    fresh = readout_to_json(readout_compute(readout_input(slices=[("platform", "ios", (40, 60))], multiple=3)))
    assert readout_to_json(readout_from_json(json.loads(json.dumps(fresh)))) == fresh


def test_from_json__run_without_results__empty_and_written_as_stored() -> None:
    columns: dict[str, Any] = {"units": None, "multiple_exposure_units": None, "multiple_exposure_share": None,
               "srm_p_value": None, "srm_warning": False, "guardrail_status": "", "variations": [], "metrics": [],
               "slices": [], "warnings": [], "settings": {}, "inputs": {}, "schema_version": None}
    readout = readout_from_json(columns)
    assert readout.settings is None and readout.inputs is None and readout.guardrail_status is None
    assert readout_to_json(readout) == {**columns, "schema_version": SCHEMA_VERSION}


def test_from_json__newer_version__refused() -> None:
    with pytest.raises(ValueError, match="newer"):
        readout_from_json({**stored("v3.json"), "schema_version": SCHEMA_VERSION + 1})


def test_from_json__list_query_part__primary_headline_only() -> None:
    doc = stored("v2.json")
    primary = {k: v for k, v in doc["metrics"][0].items()
               if k not in ("fixed", "cuped", "sequential", "sequential_unadjusted")}
    part = readout_from_json({"units": doc["units"], "variations": doc["variations"], "warnings": doc["warnings"],
                              "settings": doc["settings"], "metrics": [primary]})
    assert part.primary is not None and part.primary.sequential == ()
    full = readout_from_json(doc).metrics[0]
    assert part.primary.numbers("sequential", "relative") == full.numbers("sequential", "relative")
    assert part.analysis.correction == "holm" and part.primary.comparisons[0].p_value_adjusted is not None


@pytest.mark.parametrize("name", ["v1 mapping", "v2"])
def test_from_json__trend_part__one_view_of_one_metric(name: str) -> None:
    doc = VERSIONS[name][0]()
    view = [c for c in readout_from_json(doc).metrics[0].mode("sequential") if c.difference_type == "relative"]
    stored_view = [c for c in doc["metrics"][0]["sequential"] if c.get("difference_type") == "relative"] \
        if isinstance(doc["metrics"][0]["sequential"], list) else doc["metrics"][0]["sequential"]["relative"]
    part = readout_from_json({"variations": doc["variations"],
                              "metrics": [{"key": "buy", "sequential_unadjusted": None, "sequential": stored_view}]})
    metric = part.metric("buy")
    assert metric is not None and metric.sequential_unadjusted == ()
    assert list(metric.numbers("sequential", "relative").values()) == view
    assert [v.units for v in part.variations] == [1200, 1180]


def test_from_json__slice_part__one_dimension_one_metric() -> None:
    doc = stored("v2.json")
    entries = [{**s, "metrics": [m for m in s["metrics"] if m["key"] == "errors"]} for s in doc["slices"]]
    part = readout_from_json({"slices": entries})
    assert [s.value for s in part.slices] == ["DE", "FR"]
    assert all([m.key for m in s.metrics] == ["errors"] for s in part.slices)
    assert part.settings is None and part.metrics == ()


def test_from_json__malformed_values__read_as_missing() -> None:
    readout = readout_from_json({"units": "many", "srm_warning": 1, "variations": [{"key": "a", "units": "x"}, 3],
                                 "metrics": [{"key": "m", "fixed": "broken", "cap": True}], "settings": []})
    assert readout.units is None and readout.srm_warning is True
    assert [(v.key, v.units, v.weight) for v in readout.variations] == [("a", 0, None)]
    assert readout.metrics[0].fixed == () and readout.metrics[0].cap is None and readout.settings is None
