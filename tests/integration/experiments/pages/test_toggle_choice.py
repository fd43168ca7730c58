"""`choose_toggles` on hand-written snapshots: which stored view each choice lands on, and the
fallbacks (with their notes) for readouts that lack a view. No database."""

from __future__ import annotations

from typing import Any

from pages.presentation.viewmodels import choose_toggles, parse_snapshot


def _comparison(dtype: str, *, estimate: float = 0.1, cuped: bool = False, sequential: bool = False
                ) -> dict[str, Any]:
    return {"variation": "treatment", "difference_type": dtype, "estimate": estimate, "ci_low": estimate - 0.05,
            "ci_high": estimate + 0.05, "p_value": 0.01, "chance_to_win": 0.99, "cuped_applied": cuped,
            "variance_reduction": 0.3 if cuped else None, "sequential": sequential, "error": None}


def _snapshot(*, sequential: bool, cuped: bool, new: bool) -> Any:
    types = ("relative", "absolute") if new else ("relative",)
    metric: dict[str, Any] = {
        "key": "buy", "name": "buy", "kind": "conversion", "role": "primary", "direction": "higher",
        "headline": "sequential" if sequential else "cuped" if cuped else "fixed",
        "variations": [{"key": "control", "users": 1000, "mean": 0.1, "stddev": 0.3},
                       {"key": "treatment", "users": 1000, "mean": 0.11, "stddev": 0.31}],
        "fixed": [_comparison(t) for t in types],
        "cuped": [_comparison(t, cuped=cuped) for t in types],
        "sequential": [_comparison(t, cuped=cuped, sequential=True) for t in types],
    }
    if new and cuped:
        metric["sequential_unadjusted"] = [_comparison(t, sequential=True) for t in types]
    return parse_snapshot({
        "id": 1, "status": "success", "units": 2000,
        "variations": [{"key": "control", "name": "Control", "weight": 0.5, "units": 1000},
                       {"key": "treatment", "name": "Treatment", "weight": 0.5, "units": 1000}],
        "metrics": [metric], "warnings": [],
        "settings": {"alpha": 0.05, "difference_type": "relative", "sequential": sequential, "cuped": cuped},
    })


def test_choose_toggles__defaults__configured_analysis() -> None:
    toggles = choose_toggles(_snapshot(sequential=True, cuped=True, new=True), cuped=None, relative=None)
    assert (toggles.analysis, toggles.mode, toggles.difference_type) == ("sequential", "sequential", "relative")
    assert toggles.cuped and toggles.cuped_available and toggles.types_available == ("absolute", "relative")
    assert toggles.analyses_available == ("fixed", "sequential")
    assert toggles.cuped_note == toggles.type_note == toggles.analysis_note == ""


def test_choose_toggles__every_combination__its_stored_mode() -> None:
    snapshot = _snapshot(sequential=True, cuped=True, new=True)
    expected = {("fixed", True): "cuped", ("fixed", False): "fixed",
                ("sequential", True): "sequential", ("sequential", False): "sequential_unadjusted"}
    for (analysis, cuped), mode in expected.items():
        for relative in (True, False):
            toggles = choose_toggles(snapshot, cuped=cuped, relative=relative, analysis=analysis)
            assert toggles.mode == mode
            assert toggles.difference_type == ("relative" if relative else "absolute")
            assert toggles.sequential_mode == ("sequential" if cuped else "sequential_unadjusted")
            assert snapshot.metrics[0].numbers(toggles.mode, toggles.difference_type)


def test_choose_toggles__cuped_off_in_settings__no_adjusted_view() -> None:
    snapshot = _snapshot(sequential=False, cuped=False, new=True)
    toggles = choose_toggles(snapshot, cuped=True, relative=None, analysis="sequential")
    assert (toggles.mode, toggles.cuped, toggles.cuped_available) == ("sequential", False, False)
    assert "CUPED is off" in toggles.cuped_note
    assert toggles.sequential_mode == "sequential"


def test_choose_toggles__old_readout__falls_back_with_notes() -> None:
    snapshot = _snapshot(sequential=True, cuped=True, new=False)
    toggles = choose_toggles(snapshot, cuped=False, relative=False)
    assert (toggles.mode, toggles.difference_type, toggles.cuped) == ("sequential", "relative", True)
    assert "not available for this readout" in toggles.cuped_note
    assert "stored relative results only" in toggles.type_note
    fixed = choose_toggles(snapshot, cuped=False, relative=None, analysis="fixed")
    assert fixed.mode == "fixed" and fixed.cuped_note == ""


def test_choose_toggles__no_sequential_stored__fixed_with_a_note() -> None:
    snapshot = _snapshot(sequential=False, cuped=True, new=True)
    raw = {"metrics": [], "settings": {"cuped": True}}
    empty = parse_snapshot(raw)
    toggles = choose_toggles(empty, cuped=None, relative=None, analysis="sequential")
    assert toggles.analysis == "fixed" and "no sequential results" in toggles.analysis_note
    assert choose_toggles(snapshot, cuped=None, relative=None, analysis="bayesian").analysis == "fixed"
