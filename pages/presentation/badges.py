"""Health checks of an experiment in words: list badges and the sample-ratio explanation.

Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pages.presentation.formatting import fmt_p, fmt_share
from pages.presentation.viewmodels import SnapshotData

__all__ = ["MULTIPLE_EXPOSURE_BADGE", "Badge", "ListFacts", "list_badges", "srm_explanation"]

# Above this share of users seen in two variations the list shows a badge (the readout warns too).
MULTIPLE_EXPOSURE_BADGE = 0.01


@dataclass(frozen=True, slots=True)
class Badge:
    code: str
    label: str
    tone: str
    explanation: str


@dataclass(frozen=True, slots=True)
class ListFacts:
    """What the list page knows about an experiment's latest readouts."""

    status: str
    min_sample: int
    arm_units: Sequence[int] = field(default_factory=tuple)
    srm_warning: bool = False
    srm_p_value: float | None = None
    multiple_exposure_share: float | None = None
    guardrail_status: str = ""
    warning_codes: frozenset[str] = frozenset()
    has_snapshot: bool = False
    last_failed: bool = False


def list_badges(facts: ListFacts) -> list[Badge]:
    badges: list[Badge] = []
    if facts.last_failed:
        badges.append(
            Badge("failed", "readout failed", "bad", "The latest readout failed; the numbers shown are older.")
        )
    if facts.status == "draft":
        return badges
    if not facts.has_snapshot:
        badges.append(Badge("no_data", "no readout yet", "warn", "No readout has finished yet."))
        return badges
    if facts.srm_warning:
        badges.append(
            Badge(
                "srm",
                "SRM",
                "bad",
                f"Sample ratio mismatch (p = {fmt_p(facts.srm_p_value)}): the split differs from the configured one.",
            )
        )
    share = facts.multiple_exposure_share
    if (share is not None and share > MULTIPLE_EXPOSURE_BADGE) or "multiple_exposures" in facts.warning_codes:
        badges.append(
            Badge(
                "multiple_exposures",
                "multiple exposures",
                "warn",
                f"{fmt_share(share)} of units saw more than one variation; they are left out.",
            )
        )
    if facts.guardrail_status == "failing":
        badges.append(Badge("guardrail", "guardrail harmed", "bad", "A guardrail metric is significantly worse."))
    elif facts.guardrail_status == "warning":
        badges.append(Badge("guardrail_warning", "guardrail trending worse", "warn",
                            "A guardrail metric is worse, but not significantly so."))
    smallest = min(facts.arm_units, default=0)
    if smallest < max(facts.min_sample, 1) or {"low_sample", "no_data"} & facts.warning_codes:
        badges.append(
            Badge(
                "not_enough_data",
                "not enough data yet",
                "warn",
                f"The smallest arm has {smallest:,} units; results are reliable from {facts.min_sample:,} per arm.",
            )
        )
    return badges


def srm_explanation(snapshot: SnapshotData) -> str:
    """The sample-ratio check in plain words, with the expected and observed split."""
    arms = snapshot.arms
    total = sum(a.units for a in arms)
    weights = [a.weight or 0.0 for a in arms]
    weight_sum = sum(weights) or 1.0
    expected = ", ".join(f"{a.name} {w / weight_sum * 100:.1f}%" for a, w in zip(arms, weights, strict=True))
    observed = ", ".join(
        f"{a.name} {a.units / total * 100:.1f}% ({a.units:,})" if total else f"{a.name} 0" for a in arms
    )
    p = snapshot.srm_p_value
    if snapshot.srm_warning:
        chance = "less than 1 in 1,000" if p is not None and p < 0.001 else f"p = {fmt_p(p)}"
        return (
            f"The split asked for {expected}, but the users arrived as {observed}. "
            f"A gap this large happens by chance {chance} times, so something is sending or counting users "
            "unevenly: a bug in assignment, a redirect or crash in one variation, bots, or exposures logged "
            "differently per variation. Every number on this page may be biased; find the cause before deciding."
        )
    return (
        f"The split asked for {expected}; users arrived as {observed}. "
        f"That is within what chance explains (p = {fmt_p(p)}), so the assignment looks healthy."
    )
