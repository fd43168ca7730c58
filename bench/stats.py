"""Readout throughput: the statistics engine against gbstats 0.8.0 on the same comparisons.

N two-arm analyses with one comparison each (a mix of mean, binomial, CUPED, ratio and
sequential, absolute and relative) start as the same JSON-like dicts, as the readout task
and the CLI receive them. Ours checks and analyses them in one batch with
``stats.analyze_records`` (dicts out); gbstats builds its statistic objects and runs
``compute_result`` plus ``check_srm`` for each. For reference the table also times the
typed path (``parse_analysis`` + ``analyze_many``, dataclasses out) and the numpy core
alone. Results must agree wherever the methods are the same (relative CUPED differs by
design; see docs/statistics.md).

    python bench/stats.py [--comparisons 10000] [--repeat 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import platform
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


def run_records(inputs: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return stats.analyze_records([d for _, d in inputs])


def run_dataclasses(inputs: list[tuple[str, dict[str, Any]]]) -> list[stats.AnalysisResult]:
    return stats.analyze_many([stats.parse_analysis(d) for _, d in inputs])


def run_arrays(inputs: list[tuple[str, dict[str, Any]]]) -> float:
    """The numpy core alone, on columns prepared outside the timer (an upper bound)."""
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
    start = time.process_time()
    for metric, arms, cuped in prepared:
        stats.compare_arrays(*arms, metric=metric, cuped=cuped)  # type: ignore[arg-type]
    return time.process_time() - start


def run_gbstats(inputs: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, float]]:
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
        control, results = d["variations"][0], []
        for treatment in d["variations"][1:]:
            # Fresh statistics per comparison, as gbstats' own runner does (CUPED writes theta into them).
            a, b = statistic(kind, control), statistic(kind, treatment)
            if d["sequential"]:
                test: Any = SequentialTwoSidedTTest(a, b, SequentialConfig(difference_type=d["difference_type"]))
            else:
                test = TwoSidedTTest(a, b, FrequentistConfig(difference_type=d["difference_type"]))
            results.append(test.compute_result())
        out.append((results, check_srm([v["users"] for v in d["variations"]], d["weights"])))
    return out


def check_agreement(
    inputs: list[tuple[str, dict[str, Any]]], ours: list[dict[str, Any]], theirs: list[tuple[list[Any], float]]
) -> float:
    """Largest relative difference over estimates and intervals where the methods agree."""
    worst = 0.0
    for (kind, d), r, (gs, srm) in zip(inputs, ours, theirs, strict=True):
        worst = max(worst, abs(r["srm_p_value"] - srm) / max(srm, 1e-300))
        for c, g in zip(r["comparisons"], gs, strict=True):
            if c["error"] is not None or g.error_message is not None:
                if (c["error"] is None) != (g.error_message is None):
                    raise AssertionError(f"{kind}: one engine errored: {c['error']} / {g.error_message}")
                continue
            if kind == "cuped" and (d["difference_type"] == "relative" or len(d["variations"]) > 2):
                continue  # by design: full delta method, and one theta from all variations
            for a, b in ((c["estimate"], g.expected), (c["ci_low"], g.ci[0]), (c["ci_high"], g.ci[1])):
                worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    return worst


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comparisons", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    inputs = make_inputs(args.comparisons, args.seed)
    run_records(inputs[:100])  # warm imports and caches before timing
    ours_s, ours = timed(lambda: run_records(inputs), args.repeat)
    classes_s, _ = timed(lambda: run_dataclasses(inputs), args.repeat)
    arrays_s = min(run_arrays(inputs) for _ in range(args.repeat))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # gbstats' exp() overflows on strong effects
        theirs_s, theirs = timed(lambda: run_gbstats(inputs), 1)
    worst = check_agreement(inputs, ours, theirs)

    n = args.comparisons
    print(f"# statistics engine vs gbstats 0.8.0: {n} comparisons in {len(inputs)} analyses ({', '.join(KINDS)})")
    print("# CPU seconds (time.process_time), best of --repeat for ours, one run for gbstats")
    print(f"# python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} cpus, {platform.machine()}")
    print("| engine | seconds | comparisons/s | vs gbstats |")
    print("|---|---:|---:|---:|")
    print(f"| gbstats 0.8.0 (per comparison) | {theirs_s:.3f} | {n / theirs_s:,.0f} | 1.0x |")
    rows = [
        ("stats.analyze_records (JSON in/out, one batch)", ours_s),
        ("stats.analyze_many (parse_analysis + dataclasses out)", classes_s),
        ("stats.compare_arrays (numpy core only)", arrays_s),
    ]
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} | {n / seconds:,.0f} | {theirs_s / seconds:.0f}x |")
    print(f"largest relative difference where methods agree: {worst:.1e}")
    if worst > 1e-6:
        raise SystemExit("results disagree")


if __name__ == "__main__":
    main()
