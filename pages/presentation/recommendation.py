"""What to decide, in plain words: ship, roll back, keep running, or inconclusive.

Pure: reads the stored snapshot (through `viewmodels`) and the power panel. The rules, in
order (the first that applies decides):

1. No readout yet: keep running.
2. Sample ratio mismatch: inconclusive; the numbers may be biased, find the cause first.
3. No primary metric or no result for it: inconclusive.
4. An arm below the minimum sample: keep running.
5. A guardrail significantly harmed by a treatment: roll back (a primary win is mentioned
   as a trade-off to weigh, not a reason to ship).
6. A treatment significantly better on the primary metric:
   - fixed-horizon test still short of its planned sample while running: keep running,
     because stopping at the first significant look inflates false positives;
   - otherwise ship the best such treatment.
7. Every treatment significantly worse on the primary metric: roll back.
8. No clear difference: keep running while the planned sample is not reached; otherwise
   inconclusive, with the smallest effect the test could have seen.

"Significant" is the headline analysis's interval excluding zero (the always-valid
interval for sequential experiments), and the corrected p-value below alpha when a
multiple-testing correction is configured.

With the Bayesian engine, rules 1-5 are the same (a guardrail is harmed when its credible
interval lies on the bad side of zero) and 6-8 read the posterior instead (`BayesThresholds`):
6. a treatment whose chance to beat the control reaches the threshold and whose risk (the
   expected relative loss of choosing it) is below the risk threshold: ship the one with the
   highest chance; a high chance with a risk still above the threshold: keep running;
7. every treatment with the control's chance of being better at the threshold: roll back;
8. otherwise keep running while the planned sample is not reached, then inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import stats
from experiments.readout import BAYESIAN_MODES, Comparison, MetricReadout
from pages.presentation.formatting import Unit, difference_unit, fmt_estimate, fmt_interval, fmt_risk, fmt_share
from pages.presentation.viewmodels import SnapshotData, judge

__all__ = ["BayesThresholds", "PowerPanel", "Recommendation", "decision_words", "power_panel", "recommend"]

VERDICT_WORDS = {
    "ship": "Ship",
    "rollback": "Roll back",
    "keep_running": "Keep running",
    "inconclusive": "Inconclusive",
}


@dataclass(frozen=True, slots=True)
class PowerPanel:
    metric: str
    relative: bool
    alpha: float
    power: float
    users_now: int
    mde_now: float | None
    target_mde: float | None
    users_needed: float | None
    users_more: int | None
    rate_per_day: float | None
    days_more: float | None
    projected: datetime | None
    note: str
    unit: Unit = "percent"  # what the effects read in

    @property
    def mde_now_text(self) -> str:
        return fmt_estimate(self.mde_now, self.unit).lstrip("+") if self.mde_now is not None else "—"

    @property
    def target_text(self) -> str:
        return fmt_estimate(self.target_mde, self.unit).lstrip("+") if self.target_mde is not None else "—"

    @property
    def users_now_text(self) -> str:
        return f"{self.users_now:,}"

    @property
    def rate_text(self) -> str:
        return "—" if self.rate_per_day is None else f"{self.rate_per_day:,.0f}"

    @property
    def users_more_text(self) -> str:
        return "—" if self.users_more is None else f"{self.users_more:,}"

    @property
    def reached(self) -> bool:
        return self.users_more is not None and self.users_more <= 0


@dataclass(frozen=True, slots=True)
class BayesThresholds:
    """When the Bayesian recommendation ships: a chance to beat the control of at least
    `chance_to_win` and a risk (expected relative loss of choosing the variation, 0.0025 =
    0.25%) below `risk`. The defaults are GrowthBook's."""

    chance_to_win: float = 0.95
    risk: float = 0.0025


@dataclass(frozen=True, slots=True)
class Recommendation:
    """`label` and `summary` are shown together ("Ship: Treatment beat the control ..."), so a
    summary never repeats the verdict's word."""

    verdict: str  # ship, rollback, keep_running, inconclusive
    summary: str
    reasons: tuple[str, ...]
    variation: str | None = None

    @property
    def label(self) -> str:
        return VERDICT_WORDS[self.verdict]


def decision_words(decision: str, variation: str = "") -> str:
    """A stopped experiment's decision as a sentence fragment: "Treatment shipped to everyone",
    "rolled back: the flag serves what it served before"; "" when nothing was decided.
    `variation` is the shipped variation's name (or key)."""
    if decision == "ship":
        return f"{variation} shipped to everyone" if variation else "a variation shipped to everyone"
    if decision == "rollback":
        return "rolled back: the flag serves what it served before"
    return ""


def _variance_reduction(metric: MetricReadout, snapshot: SnapshotData) -> float:
    if snapshot.headline == "fixed" or not snapshot.settings.cuped:
        return 0.0
    for n in metric.numbers("cuped", snapshot.difference_type).values():
        if n.cuped_applied and n.variance_reduction is not None:
            return min(max(n.variance_reduction, 0.0), 0.99)
    return 0.0


def power_panel(
    snapshot: SnapshotData,
    *,
    target_mde: float | None,
    started_at: datetime | None,
    now: datetime,
    power: float = 0.8,
) -> PowerPanel | None:
    """MDE at the current sample, users still needed for the target, and when that is likely.

    Planning arithmetic on the stored control mean and spread of the primary metric
    (`stats.power`: two-sample normal approximation; CUPED as its measured variance
    reduction; sequential as the wider always-valid boundary). Cheap: a few closed forms.
    """
    metric = snapshot.primary
    if metric is None or not metric.variations:
        return None
    control = metric.variations[0]
    relative = snapshot.difference_type == "relative"
    weights = [a.weight or 0.0 for a in snapshot.arms]
    users = sum(a.users for a in metric.variations)
    elapsed_days = (now - started_at).total_seconds() / 86400 if started_at else None
    rate = users / elapsed_days if elapsed_days and elapsed_days > 0.01 and users else None
    base = PowerPanel(
        metric=metric.name, relative=relative, alpha=snapshot.alpha, power=power, users_now=users, mde_now=None,
        target_mde=target_mde, users_needed=None, users_more=None, rate_per_day=rate, days_more=None,
        projected=None, note="", unit=difference_unit(metric.kind, snapshot.difference_type),
    )
    if control.stddev is None or control.mean is None or control.stddev <= 0 or len(weights) < 2 or min(weights) <= 0:
        return _replace(base, note="Not enough data on the primary metric to estimate power yet.")
    tuning = snapshot.settings.sequential_tuning if snapshot.headline == "sequential" else None
    common = {
        "variance": control.stddev**2,
        "weights": weights,
        "alpha": snapshot.alpha,
        "power": power,
        "mean": control.mean if relative else None,
        "relative": relative,
        "variance_reduction": _variance_reduction(metric, snapshot),
        "sequential_tuning_parameter": tuning,
    }
    mde_now: float | None = None
    note = ""
    try:
        if users >= 2:
            mde_now = stats.minimum_detectable_effect(users=users, **common)  # type: ignore[arg-type]
    except stats.InputError as exc:
        note = f"Power could not be estimated: {exc.message}."
    needed: float | None = None
    more: int | None = None
    days: float | None = None
    projected: datetime | None = None
    if target_mde:
        try:
            needed = stats.users_needed(effect=target_mde, **common)  # type: ignore[arg-type]
        except stats.InputError as exc:
            note = f"Users needed could not be estimated: {exc.message}."
        if needed is not None and math.isfinite(needed):
            more = max(0, math.ceil(needed) - users)
            if rate:
                days = more / rate
                projected = now + timedelta(days=days)
    return _replace(
        base, mde_now=mde_now, users_needed=needed, users_more=more, days_more=days, projected=projected, note=note
    )


def _replace(panel: PowerPanel, **changes: object) -> PowerPanel:
    values = {name: getattr(panel, name) for name in PowerPanel.__dataclass_fields__}
    values.update(changes)
    return PowerPanel(**values)


def _interval_words(headline: str) -> str:
    return {
        "sequential": "the always-valid (sequential) interval",
        "cuped": "the CUPED-adjusted interval",
        "bayesian": "the credible interval",
    }.get(headline, "the interval")


def _effect(metric: MetricReadout, n: Comparison, difference_type: str) -> str:
    """`+12.4% [+6.4%, +18.5%]`, or `+1.71 pp [...]` for an absolute difference of rates."""
    unit = difference_unit(metric.kind, difference_type)
    return f"{fmt_estimate(n.estimate, unit)} {fmt_interval(n.ci_low, n.ci_high, unit)}"


def _describe(metric: MetricReadout, n: Comparison, difference_type: str) -> str:
    return f"{metric.name} {_effect(metric, n, difference_type)}"


def recommend(
    snapshot: SnapshotData | None, *, status: str, power: PowerPanel | None, names: dict[str, str] | None = None,
    thresholds: BayesThresholds | None = None,
) -> Recommendation | None:
    """The recommendation for a started experiment; None for a draft. `thresholds` are read
    for a Bayesian readout (the defaults when None)."""
    if status == "draft":
        return None
    label = (names or {}).get
    if snapshot is None:
        return Recommendation("keep_running", "No readout yet.", ("Results appear after the first readout.",))
    if snapshot.srm_warning:
        return Recommendation(
            "inconclusive",
            "Do not decide yet: the traffic split is off (sample ratio mismatch).",
            ("Users did not arrive in the configured proportions, so every comparison may be biased.",
             "Find and fix the cause (see the sample ratio check below), then restart the experiment."),
        )
    primary = snapshot.primary
    if primary is None:
        return Recommendation("inconclusive", "There is no primary metric to decide on.", ())
    headline = snapshot.headline
    dtype = snapshot.difference_type
    comparisons = primary.numbers(headline, dtype)
    treatments = [a.key for a in snapshot.arms[1:]] or list(comparisons)
    smallest = min((a.users for a in primary.variations), default=0)
    if smallest < snapshot.min_sample:
        reasons = [f"The smallest arm has {smallest:,} users; results are reliable from {snapshot.min_sample:,}."]
        if power and power.days_more is not None and power.users_more:
            reasons.append(f"About {power.users_more:,} more users are needed for the target effect "
                           f"(about {math.ceil(power.days_more)} days at the current rate).")
        return Recommendation("keep_running", "Not enough data yet.", tuple(reasons))
    if not comparisons or all(comparisons.get(t) is None or comparisons[t].error for t in treatments):
        return Recommendation("inconclusive", "The primary metric has no result yet.",
                              ("The readout could not compare the variations on the primary metric.",))

    harms: list[str] = []
    for metric in snapshot.metrics:
        if metric.role != "guardrail":
            continue
        for key, n in metric.numbers(headline, snapshot.difference_type).items():
            tone, _ = judge(metric, n, alpha=snapshot.alpha)
            if tone == "bad":
                harms.append(f"guardrail {metric.name} is worse for {label(key, key)}: "
                             f"{_effect(metric, n, dtype)}")
    winners: list[tuple[str, Comparison]] = []
    losers: list[tuple[str, Comparison]] = []
    for key in treatments:
        found = comparisons.get(key)
        tone, _ = judge(primary, found, alpha=snapshot.alpha)
        if tone == "good" and found is not None:
            winners.append((key, found))
        elif tone == "bad" and found is not None:
            losers.append((key, found))
    sign = 1.0 if primary.higher_is_better else -1.0
    interval = _interval_words(headline)
    guardrails = [m for m in snapshot.metrics if m.role == "guardrail"]
    bayesian = headline in BAYESIAN_MODES

    if harms:
        reasons = [h[0].upper() + h[1:] + "." for h in harms]
        if bayesian:
            reasons.append("With the Bayesian engine a guardrail is harmed when its whole credible interval lies on "
                           "the bad side of zero.")
        elif winners:
            key, n = max(winners, key=lambda w: sign * (w[1].estimate or 0.0))
            reasons.append(f"The primary metric improved for {label(key, key)} ({_describe(primary, n, dtype)}), "
                           "but at a guardrail's expense: weigh the trade-off before shipping anything.")
        return Recommendation("rollback", "A guardrail metric got significantly worse.", tuple(reasons))

    if bayesian:
        return _recommend_bayesian(snapshot, primary, treatments, status=status, power=power, label=label,
                                   thresholds=thresholds or BayesThresholds(), guardrails=bool(guardrails))

    if winners:
        key, n = max(winners, key=lambda w: sign * (w[1].estimate or 0.0))
        if headline != "sequential" and status == "running" and power is not None and not power.reached \
                and power.users_more is not None:
            when = f" (about {math.ceil(power.days_more)} more days)" if power.days_more is not None else ""
            return Recommendation(
                "keep_running",
                f"Promising for {label(key, key)}, but wait for the planned sample.",
                (f"{_describe(primary, n, dtype)} excludes zero now.",
                 "This is a fixed-horizon test: stopping at the first significant look inflates false positives. "
                 f"Wait for {power.users_more:,} more users{when}, "
                 "or turn on sequential testing to decide at any time."),
                key,
            )
        reasons = [f"{interval[0].upper() + interval[1:]} excludes zero on the primary metric: "
                   f"{_describe(primary, n, dtype)}."]
        reasons.append("No guardrail harmed." if guardrails else "No guardrail metrics are configured.")
        if headline != "sequential" and status == "running" and (power is None or power.users_more is None):
            reasons.append("This is a fixed-horizon test with no planned sample on record: decide only if it has "
                           "run as long as planned, since looking early inflates false positives.")
        if n.chance_to_win is not None:
            reasons.append(f"Chance to beat the control: {fmt_share(n.chance_to_win)}.")
        if len(winners) > 1:
            others = ", ".join(label(k, k) for k, _ in winners if k != key)
            reasons.append(f"{others} also beat the control; {label(key, key)} has the largest lift.")
        return Recommendation("ship", f"{label(key, key)} beat the control on the primary metric.", tuple(reasons),
                              key)

    if losers and len(losers) == len(treatments):
        reasons = [f"{label(k, k)} is significantly worse on the primary metric: {_describe(primary, n, dtype)}."
                   for k, n in losers]
        return Recommendation("rollback", "The change made the primary metric worse.", tuple(reasons))

    first = comparisons.get(treatments[0]) if treatments else None
    reasons = []
    if first is not None and first.has_interval:
        reasons.append(f"{interval[0].upper() + interval[1:]} includes zero: {_describe(primary, first, dtype)}.")
    if losers:
        reasons.append("Worse: " + ", ".join(label(k, k) for k, _ in losers) + ".")
    if status == "running" and (power is None or power.users_more is None or not power.reached):
        if power is not None and power.users_more:
            when = f", about {math.ceil(power.days_more)} days at the current rate" if power.days_more else ""
            reasons.append(f"{power.users_more:,} more users are needed to detect a {power.target_text} effect{when}.")
        elif power is not None and power.mde_now is not None:
            reasons.append(f"With today's sample only effects of about {power.mde_now_text} or more would show.")
        return Recommendation("keep_running", "No clear difference yet: keep collecting data.", tuple(reasons))
    if power is not None and power.mde_now is not None:
        reasons.append(f"The test could detect effects of about {power.mde_now_text} (80% power); "
                       "a real effect is probably smaller than that, if there is one.")
    reasons.append("Keep whichever variation is simpler to maintain, usually the control.")
    return Recommendation("inconclusive", "No detectable difference on the primary metric.", tuple(reasons))


def _recommend_bayesian(
    snapshot: SnapshotData, primary: MetricReadout, treatments: list[str], *, status: str, power: PowerPanel | None,
    label: Callable[[str, str], str], thresholds: BayesThresholds, guardrails: bool,
) -> Recommendation:
    """Rules 6-8 on the posterior: chance to beat the control and the risk of choosing a variation
    (relative, whatever the experiment's own difference type, so that one threshold fits every
    metric)."""
    headline, dtype = snapshot.headline, snapshot.difference_type
    own = primary.numbers(headline, dtype)
    relative = primary.numbers(headline, "relative")
    need, limit = thresholds.chance_to_win, thresholds.risk
    prior = snapshot.settings.has_prior
    prior_words = (f"with the prior N({snapshot.settings.prior_mean:g}, {snapshot.settings.prior_stddev:g}²) on the "
                   "relative lift" if prior else "with a flat prior")

    def chance(key: str) -> float | None:
        n = own.get(key)
        return None if n is None or n.error else n.chance_to_win

    def risk_of_choosing(key: str) -> float | None:
        n = relative.get(key)
        return n.risk[1] if n is not None and not n.error and n.risk is not None else None

    def risk_text(value: float | None) -> str:
        return fmt_risk(value)

    likely = [k for k in treatments if (chance(k) or 0.0) >= need]
    safe = [k for k in likely if (r := risk_of_choosing(k)) is not None and r < limit]
    if safe:
        key = max(safe, key=lambda k: chance(k) or 0.0)
        n = own[key]
        reasons = [
            f"Chance to beat the control {fmt_share(chance(key))} (threshold {fmt_share(need)}), {prior_words}: "
            f"{_describe(primary, n, dtype)} (credible interval).",
            f"Risk of choosing it: {risk_text(risk_of_choosing(key))} expected relative loss, below the "
            f"{risk_text(limit)} threshold.",
            "No guardrail harmed." if guardrails else "No guardrail metrics are configured.",
        ]
        others = [k for k in safe if k != key]
        if others:
            reasons.append(", ".join(label(k, k) for k in others) + f" also qualify; {label(key, key)} has the "
                           "highest chance to win.")
        return Recommendation("ship", f"{label(key, key)} is very likely better than the control on the primary "
                                      "metric.", tuple(reasons), key)
    if likely:
        key = max(likely, key=lambda k: chance(k) or 0.0)
        return Recommendation(
            "keep_running", f"{label(key, key)} is probably better, but choosing it still risks too much.",
            (f"Chance to beat the control {fmt_share(chance(key))}, but the risk of choosing it is "
             f"{risk_text(risk_of_choosing(key))}, above the {risk_text(limit)} threshold: if it is worse, it could "
             "be worse by that much on average.",
             "More data narrows the posterior and lowers the risk."),
            key,
        )
    losing = [k for k in treatments if (c := chance(k)) is not None and 1.0 - c >= need]
    if losing and len(losing) == len(treatments):
        reasons = [f"{label(k, k)}: the control is better with {fmt_share(1.0 - (chance(k) or 0.0))} probability "
                   f"({_describe(primary, own[k], dtype)})." for k in losing]
        return Recommendation("rollback", "The change very likely made the primary metric worse.", tuple(reasons))
    first = treatments[0] if treatments else None
    reasons = []
    if first is not None and first in own and own[first].has_interval:
        reasons.append(f"Chance to beat the control {fmt_share(chance(first))}, short of {fmt_share(need)}: "
                       f"{_describe(primary, own[first], dtype)} (credible interval, {prior_words}).")
    if status == "running" and (power is None or power.users_more is None or not power.reached):
        if power is not None and power.users_more:
            reasons.append(f"{power.users_more:,} more users are planned to detect a {power.target_text} effect.")
        return Recommendation("keep_running", "No clear winner yet: keep collecting data.", tuple(reasons))
    reasons.append("Keep whichever variation is simpler to maintain, usually the control.")
    return Recommendation("inconclusive", "No variation is clearly better on the primary metric.", tuple(reasons))
