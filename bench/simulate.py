"""Operating characteristics of the statistics engine from simulated users.

Each experiment has 10,000 users (5,000 per arm) analysed at 20 equally spaced looks,
alpha = 0.05, N* = 5,000. Metrics: revenue = Bernoulli(0.2) * LogNormal(3, 1) with a
pre-period covariate at correlation rho, and a 10% conversion. Prints the tables and
writes them into docs/statistics.md between the simulation markers.

    python bench/simulate.py [--experiments 10000] [--seed 2024] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stats
from stats.simulation import LookSums, population_moments, simulate_arms

USERS_PER_ARM, LOOKS, ALPHA, TUNING = 5000, 20, 0.05, 5000.0
LIFTS = (0.0, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30)
DOC = Path(__file__).resolve().parent.parent / "docs" / "statistics.md"
BEGIN, END = "<!-- simulation:begin -->", "<!-- simulation:end -->"


def _compare(control: LookSums, treatment: LookSums, look: int | slice, **options: Any) -> stats.ComparisonArrays:
    return stats.compare_arrays(
        control.at(look), treatment.at(look), alpha=ALPHA, sequential_tuning_parameter=TUNING, **options
    )


def _rate(mask: np.ndarray) -> str:
    return f"{100 * float(np.mean(mask)):.1f}%"


def _any_look(out: stats.ComparisonArrays, experiments: int) -> np.ndarray:
    return (out.p_value < ALPHA).reshape(experiments, LOOKS).any(axis=1)  # type: ignore[no-any-return]


def error_rates(revenue: tuple[LookSums, LookSums], conversion: tuple[LookSums, LookSums], k: int) -> list[str]:
    rows = ["| metric | method | A/A false positives (target 5%) | coverage of a +5% lift (target 95%) |"]
    rows.append("|---|---|---:|---:|")
    true_difference = 0.05 * population_moments("revenue")[0]
    variants: list[tuple[str, tuple[LookSums, LookSums], str, str, dict[str, Any]]] = [
        ("revenue", revenue, "mean", "t test, relative lift", {}),
        ("revenue", revenue, "mean", "t test, absolute difference", {"difference_type": "absolute"}),
        ("revenue", revenue, "mean", "CUPED (rho = 0.5), relative lift", {"cuped": True}),
        ("conversion", conversion, "binomial", "t test, relative lift", {}),
    ]
    for name, (c, t), metric, label, options in variants:
        aa = _compare(c, t, -1, metric=metric, **options)
        coverage = "n/a (0/1 metric)"
        if name == "revenue":
            truth = true_difference if options.get("difference_type") == "absolute" else 0.05
            ab = _compare(c, t.scaled(1.05), -1, metric=metric, **options)
            coverage = _rate((ab.ci_low <= truth) & (ab.ci_high >= truth))
        rows.append(f"| {name} | {label} | {_rate(aa.p_value < ALPHA)} | {coverage} |")
    return rows


def peeking(revenue: tuple[LookSums, LookSums], conversion: tuple[LookSums, LookSums], k: int) -> list[str]:
    rows = [f"| metric | method | A/A false positives at any of {LOOKS} looks | at the last look only |"]
    rows.append("|---|---|---:|---:|")
    for name, (c, t), metric in (("revenue", revenue, "mean"), ("conversion", conversion, "binomial")):
        variants: list[tuple[str, dict[str, Any]]] = [
            ("t test checked at every look", {}),
            ("confidence sequence", {"sequential": True}),
        ]
        if name == "revenue":
            variants.append(("confidence sequence + CUPED", {"sequential": True, "cuped": True}))
        for label, options in variants:
            out = _compare(c, t, slice(None), metric=metric, **options)
            last = (out.p_value < ALPHA).reshape(k, LOOKS)[:, -1]
            rows.append(f"| {name} | {label} | {_rate(_any_look(out, k))} | {_rate(last)} |")
    return rows


def cuped_table(by_rho: dict[float, tuple[LookSums, LookSums]]) -> list[str]:
    rows = ["| rho | theory 1 - rho^2 | variance ratio across experiments | mean reported variance_reduction |"]
    rows.append("|---:|---:|---:|---:|")
    for rho, (c, t) in sorted(by_rho.items()):
        adjusted = _compare(c, t, -1, metric="mean", cuped=True)
        plain = _compare(c, t, -1, metric="mean")
        ratio = np.var(adjusted.estimate) / np.var(plain.estimate)
        rows.append(f"| {rho:.1f} | {1 - rho**2:.3f} | {ratio:.3f} | {np.mean(adjusted.variance_reduction):.3f} |")
    return rows


def power_table(revenue: tuple[LookSums, LookSums], k: int) -> list[str]:
    c, t = revenue
    mean, sd = population_moments("revenue")
    rows = [
        "| true lift | fixed | CUPED | sequential (any look) | sequential + CUPED (any look) "
        "| planned (detection_power), fixed | planned, CUPED r = 0.25 |"
    ]
    rows.append("|---:|---:|---:|---:|---:|---:|---:|")
    for lift in LIFTS:
        treated = t.scaled(1.0 + lift)
        fixed = _compare(c, treated, -1, metric="mean")
        adjusted = _compare(c, treated, -1, metric="mean", cuped=True)
        seq = _compare(c, treated, slice(None), metric="mean", sequential=True)
        seq_cuped = _compare(c, treated, slice(None), metric="mean", sequential=True, cuped=True)
        planned = [
            stats.detection_power(
                effect=lift, variance=sd**2, users=2 * USERS_PER_ARM, mean=mean, relative=True, variance_reduction=r
            )
            for r in (0.0, 0.25)
        ]
        cells = [
            _rate(fixed.p_value < ALPHA),
            _rate(adjusted.p_value < ALPHA),
            _rate(_any_look(seq, k)),
            _rate(_any_look(seq_cuped, k)),
            *(f"{100 * p:.1f}%" for p in planned),
        ]
        rows.append(f"| {100 * lift:.0f}% | " + " | ".join(cells) + " |")
    return rows


def build(experiments: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    common = {"experiments": experiments, "users_per_arm": USERS_PER_ARM}
    revenue = simulate_arms(rng, looks=LOOKS, kind="revenue", rho=0.5, **common)
    conversion = simulate_arms(rng, looks=LOOKS, kind="conversion", **common)
    by_rho = {0.5: revenue, **{rho: simulate_arms(rng, kind="revenue", rho=rho, **common) for rho in (0.3, 0.7)}}
    sections = [
        ("Error rates and coverage (fixed horizon)", error_rates(revenue, conversion, experiments)),
        ("Peeking: 20 looks at an A/A test", peeking(revenue, conversion, experiments)),
        ("CUPED variance reduction (revenue, covariate at correlation rho)", cuped_table(by_rho)),
        ("Power curve (revenue, rho = 0.5; share of experiments that reject)", power_table(revenue, experiments)),
    ]
    elapsed = time.perf_counter() - started
    lines = [
        f"Generated by `python bench/simulate.py --experiments {experiments} --seed {seed}` on "
        f"{dt.date.today().isoformat()} ({os.cpu_count()} cpus, {platform.machine()}, numpy {np.__version__}; "
        f"{elapsed:.0f} s). {experiments:,} simulated experiments per row, {2 * USERS_PER_ARM:,} users each, "
        f"alpha = {ALPHA}, N* = {TUNING:,.0f}. With {experiments:,} experiments a rate near 5% has a standard "
        f"error of {100 * np.sqrt(0.05 * 0.95 / experiments):.2f} points.",
        "",
    ]
    for title, rows in sections:
        lines += [f"**{title}**", "", *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


def write(block: str) -> None:
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the {BEGIN} / {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{block}{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/statistics.md alone")
    args = parser.parse_args()
    block = build(args.experiments, args.seed)
    print(block)
    if not args.no_write:
        write(block)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
