"""Readout throughput: the statistics engine against gbstats 0.8.0 on the same comparisons.

N two-arm to four-arm analyses (a mix of mean, binomial, CUPED, ratio and sequential,
absolute and relative) start as the same JSON-like dicts, as the readout task and the CLI
receive them, and both engines end with JSON-like dicts of the documented output shape:

- ours reads each with ``stats.parse_analysis``, checks and analyses them in one batch with
  ``stats.analyze_many`` and writes each result with ``stats.result_to_dict`` (the one path
  the CLI and ``stats.analyze_records`` take);
- gbstats builds its statistic objects, runs ``compute_result`` for each comparison and
  ``check_srm`` for each analysis, and its results are put into the same dict shape.

Every engine runs once untimed first (imports, first-call caches, memory), then all are
timed in alternating rounds on the same inputs, so a busy neighbour slows them alike. Each timing is process CPU
time, starts after a full garbage collection and ends with a collection of the youngest
generation, so collector work an engine defers (ours pauses the collector while it
builds its output) is charged to it. The table gives the minimum and the median over the
rounds. It also times the numpy core alone on columns prepared outside the timer (goal: at
least 100 times gbstats' rate). Results must agree wherever the methods are the same
(relative CUPED differs by design; see docs/statistics.md).

    python bench/stats.py [--comparisons 10000] [--rounds 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stats

KINDS = ("mean", "binomial", "cuped", "ratio", "mean_sequential", "binomial_sequential")
SHARE = (0.3, 0.2, 0.2, 0.1, 0.1, 0.1)
CORE_GOAL = 100  # the numpy core's rate against gbstats'


def _moments(n: int, mean: float, sd: float) -> tuple[float, float]:
    return n * mean, (n - 1) * sd * sd + n * mean * mean


def _variation(rng: np.random.Generator, kind: str, name: str, lift: float) -> dict[str, Any]:
    n = int(rng.integers(1000, 200000))
    if kind.startswith("binomial"):
        return {"name": name, "users": n, "main_sum": float(rng.binomial(n, min(0.95, 0.1 * lift)))}
    mean, sd = 20.0 * lift, float(rng.uniform(5, 60))
    s, q = _moments(n, mean, sd)
    row: dict[str, Any] = {"name": name, "users": n, "main_sum": s, "main_sum_squares": q}
    if kind == "cuped":
        rho, x_mean, x_sd = float(rng.uniform(0.2, 0.8)), 20.0, sd
        sx, qx = _moments(n, x_mean, x_sd)
        row |= {
            "covariate_sum": sx,
            "covariate_sum_squares": qx,
            "main_covariate_sum_product": (n - 1) * rho * sd * x_sd + n * mean * x_mean,
        }
    if kind == "ratio":
        d_mean, d_sd, rho = 3.0, 1.5, 0.6
        sd_, qd = _moments(n, d_mean, d_sd)
        row |= {
            "denominator_sum": sd_,
            "denominator_sum_squares": qd,
            "main_denominator_sum_product": (n - 1) * rho * sd * d_sd + n * mean * d_mean,
        }
    return row


def make_inputs(comparisons: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """Analyses with 2-4 variations (1-3 comparisons each) until `comparisons` is reached."""
    rng = np.random.default_rng(seed)
    inputs: list[tuple[str, dict[str, Any]]] = []
    remaining = comparisons
    while remaining > 0:
        kind = KINDS[rng.choice(len(KINDS), p=SHARE)]
        arms = min(remaining + 1, int(rng.choice([2, 3, 4], p=[0.5, 0.3, 0.2])))
        remaining -= arms - 1
        metric = {"cuped": "mean", "mean_sequential": "mean", "binomial_sequential": "binomial"}.get(kind, kind)
        names = ["control", *(f"treatment-{i}" for i in range(1, arms))]
        lifts = [1.0, *(float(rng.uniform(0.97, 1.05)) for _ in range(1, arms))]
        inputs.append(
            (
                kind,
                {
                    "metric": metric,
                    "difference_type": str(rng.choice(["relative", "absolute"])),
                    "sequential": kind.endswith("sequential"),
                    "cuped": kind == "cuped",
                    "weights": [1.0 / arms] * arms,
                    "variations": [_variation(rng, kind, n, lift) for n, lift in zip(names, lifts, strict=True)],
                },
            )
        )
    return inputs


def run_ours(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results = stats.analyze_many([stats.parse_analysis(d) for d in records])
    return [stats.result_to_dict(r) for r in results]


def prepare_arrays(inputs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, list[stats.ArmArrays], bool]]:
    """Columns for the numpy core, one set per (metric, CUPED), built outside the timer."""
    pairs: dict[tuple[str, bool], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for _, d in inputs:
        control = d["variations"][0]
        for treatment in d["variations"][1:]:
            pairs.setdefault((d["metric"], d["cuped"]), []).append((control, treatment))
    prepared = []
    for (metric, cuped), group in pairs.items():
        arms = []
        for arm in (0, 1):
            rows = [pair[arm] for pair in group]
            fields = {f: np.array([r.get(f, np.nan) for r in rows]) for f in stats.types.NUMERIC_FIELDS}
            arms.append(stats.ArmArrays(**fields))
        prepared.append((metric, arms, cuped))
    return prepared


def run_arrays(prepared: list[tuple[str, list[stats.ArmArrays], bool]]) -> list[stats.ComparisonArrays]:
    """The numpy core alone (arrays in, arrays out): an upper bound, not a readout."""
    return [stats.compare_arrays(*arms, metric=metric, cuped=cuped) for metric, arms, cuped in prepared]  # type: ignore[arg-type]


def run_gbstats(inputs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """gbstats on every comparison, results in the documented output shape."""
    from gbstats.frequentist.tests import FrequentistConfig, SequentialConfig, SequentialTwoSidedTTest, TwoSidedTTest
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )
    from gbstats.utils import check_srm

    def statistic(kind: str, v: dict[str, Any]) -> Any:
        n = v["users"]
        if kind.startswith("binomial"):
            return ProportionStatistic(n=n, sum=v["main_sum"])
        main = SampleMeanStatistic(n=n, sum=v["main_sum"], sum_squares=v["main_sum_squares"])
        if kind == "cuped":
            pre = SampleMeanStatistic(n=n, sum=v["covariate_sum"], sum_squares=v["covariate_sum_squares"])
            return RegressionAdjustedStatistic(
                n=n,
                post_statistic=main,
                pre_statistic=pre,
                post_pre_sum_of_products=v["main_covariate_sum_product"],
                theta=0,
            )
        if kind == "ratio":
            den = SampleMeanStatistic(n=n, sum=v["denominator_sum"], sum_squares=v["denominator_sum_squares"])
            return RatioStatistic(
                n=n, m_statistic=main, d_statistic=den, m_d_sum_of_products=v["main_denominator_sum_product"]
            )
        return main

    out = []
    for kind, d in inputs:
        control, comparisons, summaries = d["variations"][0], [], []
        for treatment in d["variations"][1:]:
            # Fresh statistics per comparison, as gbstats' own runner does (CUPED writes theta into them).
            a, b = statistic(kind, control), statistic(kind, treatment)
            if d["sequential"]:
                test: Any = SequentialTwoSidedTTest(a, b, SequentialConfig(difference_type=d["difference_type"]))
            else:
                test = TwoSidedTTest(a, b, FrequentistConfig(difference_type=d["difference_type"]))
            r = test.compute_result()
            if not summaries:
                summaries.append({"name": control["name"], "users": a.n, "mean": a.unadjusted_mean, "stddev": a.stddev})
            summaries.append({"name": treatment["name"], "users": b.n, "mean": b.unadjusted_mean, "stddev": b.stddev})
            comparisons.append(
                {
                    "variation": treatment["name"],
                    "difference_type": d["difference_type"],
                    "estimate": r.expected,
                    "ci_low": r.ci[0],
                    "ci_high": r.ci[1],
                    "p_value": r.p_value,
                    "chance_to_win": None,  # not part of gbstats' frequentist result
                    "cuped_applied": kind == "cuped",
                    "variance_reduction": None,
                    "sequential": d["sequential"],
                    "error": r.error_message,
                }
            )
        srm = check_srm([v["users"] for v in d["variations"]], d["weights"])
        out.append(
            {"srm_p_value": srm, "srm_warning": srm < 0.001, "variations": summaries, "comparisons": comparisons}
        )
    return out


def check_agreement(
    inputs: list[tuple[str, dict[str, Any]]], ours: list[dict[str, Any]], theirs: list[dict[str, Any]]
) -> float:
    """Largest relative difference over SRM p-values, estimates and intervals where the methods agree."""
    worst = 0.0
    for (kind, d), r, g in zip(inputs, ours, theirs, strict=True):
        worst = max(worst, abs(r["srm_p_value"] - g["srm_p_value"]) / max(g["srm_p_value"], 1e-300))
        for c, gc_ in zip(r["comparisons"], g["comparisons"], strict=True):
            if c["error"] is not None or gc_["error"] is not None:
                if (c["error"] is None) != (gc_["error"] is None):
                    raise AssertionError(f"{kind}: one engine errored: {c['error']} / {gc_['error']}")
                continue
            if kind == "cuped" and (d["difference_type"] == "relative" or len(d["variations"]) > 2):
                continue  # by design: full delta method, and one theta from all variations
            for field in ("estimate", "ci_low", "ci_high"):
                a, b = c[field], gc_[field]
                worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    return worst


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds of one call, after a full collection and including a young-generation one."""
    gc.collect()
    start = time.process_time()
    result = fn()
    gc.collect(0)
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comparisons", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each engine, alternating")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    inputs = make_inputs(args.comparisons, args.seed)
    records = [d for _, d in inputs]
    prepared = prepare_arrays(inputs)
    engines: dict[str, Callable[[], Any]] = {
        "gbstats": lambda: run_gbstats(inputs),
        "ours": lambda: run_ours(records),
        "arrays": lambda: run_arrays(prepared),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # gbstats' exp() overflows on strong effects
        for fn in engines.values():
            fn()  # imports, first-call caches and memory, for every engine, before timing
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        results: dict[str, Any] = {}
        for _ in range(args.rounds):
            for name, fn in engines.items():
                results.pop(name, None)  # each timed call starts without its previous result alive
                elapsed, results[name] = timed(fn)
                seconds[name].append(elapsed)
    worst = check_agreement(inputs, results["ours"], results["gbstats"])

    n = args.comparisons
    low = {name: min(s) for name, s in seconds.items()}
    mid = {name: statistics.median(s) for name, s in seconds.items()}
    print(f"# statistics engine vs gbstats 0.8.0: {n} comparisons in {len(inputs)} analyses ({', '.join(KINDS)})")
    print(f"# CPU seconds (time.process_time), min and median of {args.rounds} alternating rounds per engine")
    print(f"# python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cpus, {platform.machine()}")
    print("| engine | CPU s (min) | CPU s (median) | comparisons/s (median) | vs gbstats (min) | vs gbstats (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    labels = {
        "gbstats": "gbstats 0.8.0 (per comparison, dicts out)",
        "ours": "stats.analyze_many (parse_analysis in, result_to_dict out)",
        "arrays": "stats.compare_arrays (numpy core only, arrays out)",
    }
    for name, label in labels.items():
        print(
            f"| {label} | {low[name]:.3f} | {mid[name]:.3f} | {n / mid[name]:,.0f} "
            f"| {low['gbstats'] / low[name]:.1f}x | {mid['gbstats'] / mid[name]:.1f}x |"
        )
    for name in engines:
        print(f"# {name} rounds: {', '.join(f'{s:.4f}' for s in seconds[name])}")
    core = mid["gbstats"] / mid["arrays"]
    verdict = "met" if core >= CORE_GOAL else "NOT met"
    print(f"numpy core vs gbstats (median): {core:.0f}x; goal at least {CORE_GOAL}x: {verdict}")
    print(f"largest relative difference where methods agree: {worst:.1e}")
    if worst > 1e-6:
        raise SystemExit("results disagree")


if __name__ == "__main__":
    main()
