"""Whether a change to a running experiment continues its phase or starts a new one.

Bucketing (`traffic.assignment.bucketing`) lays each variation's hash range out from its
weight and shrinks it from its own start by the coverage. Raising coverage only grows every
range, so each unit already in the experiment keeps its variation and the current phase
continues, with more units arriving. Lowering coverage takes units out, and a change of
weights, targeting or holdout moves or removes units: those start a new phase, whose results
count units from then on. The pages and the API show `PhaseChange.words` before a change is
confirmed; `experiments.lifecycle` acts on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Assignment", "PhaseChange", "phase_change", "split_text"]


@dataclass(frozen=True, slots=True)
class Assignment:
    """What decides which units are in an experiment and in which variation."""

    coverage: float
    weights: tuple[float, ...]
    condition: Mapping[str, Any]
    holdout: str  # the holdout's key, "" for none
    segments: tuple[str, ...] = ()  # saved segments a unit must be in


@dataclass(frozen=True, slots=True)
class PhaseChange:
    new_phase: bool
    coverage_raised: bool
    reasons: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.new_phase or self.coverage_raised

    @property
    def phase_reason(self) -> str:
        """The reasons in short, as the new phase records them (at most 200 characters)."""
        text = " ".join(r.split(":")[0].rstrip(".") + "." for r in self.reasons)
        return text if len(text) <= 200 else text[:199] + "…"

    @property
    def words(self) -> str:
        """What the change does to the phase, for the confirmation and the phase's reason."""
        if self.new_phase:
            return " ".join(self.reasons) + " This starts a new phase: results restart from the users who enter it."
        if self.coverage_raised:
            return (" ".join(self.reasons) + " The current phase continues: every user already in the experiment "
                    "keeps their variation, and new users join.")
        return "Nothing that decides who is in the experiment changes; the current phase continues."


def _percent(share: float) -> str:
    return f"{share * 100:.4g}%"


def split_text(weights: Sequence[float]) -> str:
    return "/".join(f"{w * 100:.4g}" for w in weights)


def phase_change(current: Assignment, proposed: Assignment) -> PhaseChange:
    """Compare the assignment of a running experiment before and after a change."""
    reasons: list[str] = []
    new_phase = False
    raised = False
    if proposed.coverage > current.coverage:
        raised = True
        reasons.append(f"Coverage rises from {_percent(current.coverage)} to {_percent(proposed.coverage)}.")
    elif proposed.coverage < current.coverage:
        new_phase = True
        reasons.append(f"Coverage falls from {_percent(current.coverage)} to {_percent(proposed.coverage)}: "
                       "users above the new share leave the experiment.")
    if tuple(proposed.weights) != tuple(current.weights):
        new_phase = True
        reasons.append(f"The split changes from {split_text(current.weights)} to {split_text(proposed.weights)}: "
                       "some users move to another variation.")
    if dict(proposed.condition or {}) != dict(current.condition or {}) or proposed.segments != current.segments:
        new_phase = True
        reasons.append("The targeting changes: other users are eligible.")
    if proposed.holdout != current.holdout:
        new_phase = True
        reasons.append("The holdout changes: other users are held out.")
    return PhaseChange(new_phase=new_phase, coverage_raised=raised and not new_phase, reasons=tuple(reasons))
