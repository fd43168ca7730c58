"""Operating characteristics of the Bayesian engine and of the slice heterogeneity test.

- Calibration: true effects drawn from the prior; the share of 95% credible intervals that
  cover them (target 95%).
- A/A: the share of experiments whose chance to win reaches 95%, with a flat prior and with
  GrowthBook's N(0, 0.3^2); and how often the Bayesian recommendation's ship rule (chance to
  win >= 95% and risk < 0.25%) fires.
- Heterogeneity: three slice attributes (2, 4 and 6 values) of a 10% conversion; how often
  anything is flagged when the lift is the same in every slice (target <= alpha), and how
  often a value whose lift is larger is flagged.
- Winner's-curse correction: portfolios of 20 experiments whose true lifts are drawn from
  N(0, tau^2); the squared error of the shrunk lifts against the raw ones, how much the lifts
  of the experiments that would ship (z > 1.96) overstate their truth before and after, and
  the coverage of the shrunk intervals (target 95%).

Prints the tables and writes them into docs/statistics.md between the bayes-simulation markers.

    python bench/bayes_simulate.py [--experiments 20000] [--seed 2026] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stats
from stats.simulation import simulate_sums

DOC = Path(__file__).resolve().parent.parent / "docs" / "statistics.md"
BEGIN, END = "<!-- bayes-simulation:begin -->", "<!-- bayes-simulation:end -->"
USERS_PER_ARM = 1000
ALPHA = 0.05
SHIP_CHANCE, SHIP_RISK = 0.95, 0.0025
ATTRIBUTES = {"platform": 2, "plan": 4, "country": 6}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def calibration(rng: np.random.Generator, k: int) -> list[str]:
    control, base = simulate_sums(rng, experiments=k, users_per_arm=USERS_PER_ARM, kind="normal")
    rows = ["| difference type | prior | coverage of the true effect (target 95%) "
            "| mean chance to win of true winners |", "|---|---|---:|---:|"]
    for dtype, mean, sd in (("relative", 0.0, 0.02), ("relative", 0.03, 0.02), ("absolute", 0.0, 0.15),
                            ("relative", 0.0, 0.3)):
        effect = rng.normal(mean, sd, k)
        treatment = base.shifted(effect) if dtype == "absolute" else base.scaled(1.0 + effect)
        out = stats.compare_arrays(control.at(-1), treatment.at(-1), metric="mean",
                                   difference_type=dtype,  # type: ignore[arg-type]
                                   engine="bayesian", prior_mean=mean, prior_stddev=sd)
        covered = float(np.mean((out.ci_low <= effect) & (effect <= out.ci_high)))
        wins = effect > 0
        winners = _pct(float(np.mean(out.chance_to_win[wins])))
        rows.append(f"| {dtype} | N({mean:g}, {sd:g}²) | {_pct(covered)} | {winners} |")
    return rows


def a_a(rng: np.random.Generator, k: int) -> list[str]:
    rows = ["| metric | prior | chance to win ≥ 95% (flat: 5% expected) "
            "| ship rule fires (chance ≥ 95%, risk < 0.25%) |", "|---|---|---:|---:|"]
    for kind, metric, users in (("normal", "mean", USERS_PER_ARM), ("conversion", "binomial", 5000)):
        control, treatment = simulate_sums(rng, experiments=k, users_per_arm=users, kind=kind)  # type: ignore[arg-type]
        for label, options in (("flat", {}), ("N(0, 0.3²)", {"prior_mean": 0.0, "prior_stddev": 0.3})):
            out = stats.compare_arrays(control.at(-1), treatment.at(-1),
                                       metric=metric,  # type: ignore[arg-type]
                                       difference_type="relative", engine="bayesian",
                                       **options)  # type: ignore[arg-type]
            high = out.chance_to_win >= SHIP_CHANCE
            ship = high & (out.risk_treatment < SHIP_RISK)
            name = f"{'10% conversion' if kind == 'conversion' else 'normal mean'}, {users:,} per arm"
            rows.append(f"| {name} | {label} | {_pct(float(np.mean(high)))} | {_pct(float(np.mean(ship)))} |")
    return rows


def heterogeneity(rng: np.random.Generator, k: int, bump: float) -> tuple[float, float, float]:
    """(share of experiments with any flag, share with the attribute test significant, share
    naming the bumped value alone) with country-0's lift set to 5% + `bump`."""
    slots = [(name, v) for name, n in ATTRIBUTES.items() for v in range(n)]
    users = rng.integers(1500, 8000, size=(k, len(slots)))
    lift = np.array([0.05 + (bump if slot == ("country", 0) else 0.0) for slot in slots])
    control = rng.binomial(users, 0.1).astype(np.float64)
    treated = rng.binomial(users, 0.1 * (1 + lift)).astype(np.float64)
    n = users.astype(np.float64).ravel()
    out = stats.compare_arrays(stats.ArmArrays(users=n, main_sum=control.ravel(), main_sum_squares=control.ravel()),
                               stats.ArmArrays(users=n, main_sum=treated.ravel(), main_sum_squares=treated.ravel()),
                               metric="binomial", difference_type="relative")
    estimate = out.estimate.reshape(k, len(slots))
    se = np.sqrt(out.variance).reshape(k, len(slots))
    any_flag = significant = named = 0
    for e in range(k):
        family, start = [], 0
        for name, count in ATTRIBUTES.items():
            family.append(stats.AttributeEstimates(name, tuple(f"{name}-{v}" for v in range(count)),
                                                   tuple(estimate[e, start:start + count]),
                                                   tuple(se[e, start:start + count])))
            start += count
        tested = stats.heterogeneity_family(family, alpha=ALPHA)
        any_flag += any(a.flagged for a in tested)
        significant += any(a.significant for a in tested)
        named += [v.value for a in tested for v in a.flagged] == ["country-0"]
    return any_flag / k, significant / k, named / k


def heterogeneity_table(rng: np.random.Generator, k: int) -> list[str]:
    rows = ["| lift in one country value | lift elsewhere | any slice flagged | some attribute significant | "
            "exactly that value flagged |", "|---:|---:|---:|---:|---:|"]
    for bump in (0.0, 0.10, 0.20, 0.40):
        flagged, significant, named = heterogeneity(rng, k, bump)
        rows.append(f"| {_pct(0.05 + bump)} | 5.0% | {_pct(flagged)} | {_pct(significant)} | {_pct(named)} |")
    return rows


def shrinkage_table(rng: np.random.Generator, portfolios: int) -> list[str]:
    rows = ["| true lifts | standard errors | squared error, shrunk / raw | shipped lifts' overstatement, raw | "
            "after the correction | coverage of the shrunk 95% intervals |", "|---|---|---:|---:|---:|---:|"]
    for tau, low, high in ((0.02, 0.01, 0.04), (0.05, 0.01, 0.04), (0.01, 0.02, 0.05)):
        raw = shrunk = over_raw = over_shrunk = truth_won = 0.0
        covered = total = 0
        for _ in range(portfolios):
            truths = rng.normal(0.0, tau, 20)
            errors = rng.uniform(low, high, 20)
            measured = truths + rng.normal(0.0, 1.0, 20) * errors
            result = stats.shrink_effects(measured.tolist(), errors.tolist(), alpha=ALPHA)
            for truth, effect in zip(truths, result.effects, strict=True):
                raw += (effect.estimate - truth) ** 2
                shrunk += (effect.shrunk - truth) ** 2
                covered += effect.ci_low <= truth <= effect.ci_high
                total += 1
                if effect.estimate / effect.std_error > 1.96:
                    over_raw += effect.estimate - truth
                    over_shrunk += effect.shrunk - truth
                    truth_won += truth
        rows.append(f"| N(0, {tau:g}²) | {low:.0%} to {high:.0%} | {_pct(shrunk / raw)} | "
                    f"{_pct(over_raw / truth_won)} | {_pct(over_shrunk / truth_won)} | "
                    f"{_pct(covered / total)} |")
    return rows


def build(experiments: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    parts = [
        "**Calibration under the prior (normal mean, 1,000 users per arm; effects drawn from the prior)**", "",
        *calibration(rng, experiments), "",
        "**A/A tests: how often the Bayesian engine calls a winner**", "",
        *a_a(rng, experiments), "",
        f"**Heterogeneity across slices ({experiments // 5:,} experiments per row; three attributes of 2, 4 and 6 "
        "values, 1,500 to 8,000 users per arm and value, 10% conversion, alpha 5%, Holm)**", "",
        *heterogeneity_table(rng, experiments // 5), "",
        f"**Winner's-curse correction ({experiments // 20:,} portfolios of 20 experiments per row; shipped: z > 1.96; "
        "overstatement: the shipped lifts' sum minus their true lifts' sum, over the true lifts' sum)**", "",
        *shrinkage_table(rng, experiments // 20), "",
    ]
    took = time.perf_counter() - started
    head = (f"Generated by `python bench/bayes_simulate.py --experiments {experiments} --seed {seed}` on "
            f"{dt.date.today().isoformat()} ({os.cpu_count()} cpus, {platform.machine()}, numpy {np.__version__}; "
            f"{took:.0f} s). {experiments:,} simulated experiments per row unless said otherwise.")
    return "\n".join([head, "", *parts]).rstrip() + "\n"


def write(block: str) -> None:
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the {BEGIN} / {END} markers")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{block}{END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    block = build(args.experiments, args.seed)
    print(block)
    if not args.no_write:
        write(block)


if __name__ == "__main__":
    main()
