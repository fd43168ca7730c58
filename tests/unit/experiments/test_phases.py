"""Which changes to a running experiment continue its phase and which start a new one."""

from __future__ import annotations

import pytest

from experiments.phases import Assignment, phase_change

NOW = Assignment(coverage=0.1, weights=(0.5, 0.5), condition={"country": "DE"}, holdout="")


def _with(**changes: object) -> Assignment:
    values = {"coverage": NOW.coverage, "weights": NOW.weights, "condition": NOW.condition, "holdout": NOW.holdout}
    values.update(changes)
    return Assignment(**values)  # type: ignore[arg-type]


def test_phase_change__coverage_raised__phase_continues() -> None:
    change = phase_change(NOW, _with(coverage=0.5))
    assert change.coverage_raised and not change.new_phase and change.changed
    assert "Coverage rises from 10% to 50%" in change.words and "phase continues" in change.words


@pytest.mark.parametrize(("changes", "said"), [
    ({"coverage": 0.05}, "Coverage falls from 10% to 5%"),
    ({"weights": (0.2, 0.8)}, "split changes from 50/50 to 20/80"),
    ({"condition": {"country": "FR"}}, "targeting changes"),
    ({"holdout": "global"}, "holdout changes"),
    ({"segments": ("beta-testers",)}, "targeting changes"),
    ({"coverage": 0.5, "weights": (0.2, 0.8)}, "split changes"),
])
def test_phase_change__anything_that_moves_or_removes_units__new_phase(changes: dict[str, object], said: str) -> None:
    change = phase_change(NOW, _with(**changes))
    assert change.new_phase and not change.coverage_raised
    assert said in change.words and "starts a new phase" in change.words
    assert len(change.phase_reason) <= 200 and ":" not in change.phase_reason


def test_phase_change__nothing_assignment_related__unchanged() -> None:
    change = phase_change(NOW, _with())
    assert not change.changed and "continues" in change.words
