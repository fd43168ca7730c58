"""Per-user data generators and their sufficient statistics, plus gbstats adapters."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from stats import AnalysisInput, VariationData

FloatArray = npt.NDArray[np.float64]


def sums(
    y: npt.ArrayLike,
    x: npt.ArrayLike | None = None,
    d: npt.ArrayLike | None = None,
    q: npt.ArrayLike | None = None,
    axis: int = -1,
) -> dict[str, Any]:
    """Sufficient statistics of per-user arrays along `axis`.

    y: metric (numerator), x: its pre-period value, d: denominator, q: pre-period denominator.
    """
    ya = np.asarray(y, dtype=np.float64)
    out: dict[str, Any] = {
        "users": ya.shape[axis],
        "main_sum": ya.sum(axis=axis),
        "main_sum_squares": (ya * ya).sum(axis=axis),
    }
    if x is not None:
        xa = np.asarray(x, dtype=np.float64)
        out |= {
            "covariate_sum": xa.sum(axis=axis),
            "covariate_sum_squares": (xa * xa).sum(axis=axis),
            "main_covariate_sum_product": (xa * ya).sum(axis=axis),
        }
    if d is not None:
        da = np.asarray(d, dtype=np.float64)
        out |= {
            "denominator_sum": da.sum(axis=axis),
            "denominator_sum_squares": (da * da).sum(axis=axis),
            "main_denominator_sum_product": (ya * da).sum(axis=axis),
        }
    if q is not None and x is not None and d is not None:
        qa, xa, da = (np.asarray(v, dtype=np.float64) for v in (q, x, d))
        out |= {
            "denominator_pre_sum": qa.sum(axis=axis),
            "denominator_pre_sum_squares": (qa * qa).sum(axis=axis),
            "main_post_denominator_pre_sum_product": (ya * qa).sum(axis=axis),
            "main_pre_denominator_post_sum_product": (xa * da).sum(axis=axis),
            "main_pre_denominator_pre_sum_product": (xa * qa).sum(axis=axis),
            "denominator_post_denominator_pre_sum_product": (da * qa).sum(axis=axis),
        }
    return out


def variation(name: str, stats: dict[str, Any]) -> VariationData:
    clean: dict[str, Any] = {k: (int(v) if k == "users" else float(v)) for k, v in stats.items()}
    return VariationData(name=name, **clean)


def correlated(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> tuple[FloatArray, FloatArray]:
    """(pre, post) standard normals with correlation rho."""
    x = rng.standard_normal(shape)
    y = rho * x + np.sqrt(1.0 - rho * rho) * rng.standard_normal(shape)
    return x, y


def random_analysis(rng: np.random.Generator, kind: str, arms: int = 2, **settings: Any) -> AnalysisInput:
    """A random, internally consistent analysis built from simulated users.

    kind: "mean", "binomial", "cuped", "cuped_binomial", "ratio" or "ratio_cuped".
    """
    variations = []
    lift = 1.0
    scale = float(rng.uniform(0.5, 20.0))
    rho = float(rng.uniform(0.1, 0.9))
    for arm in range(arms):
        n = int(rng.integers(200, 3000))
        if kind in ("binomial", "cuped_binomial"):
            base = float(rng.uniform(0.05, 0.6))
            x = (rng.random(n) < base).astype(np.float64)
            flip = rng.random(n) < float(rng.uniform(0.05, 0.4))
            y = np.where(flip, (rng.random(n) < base * lift).astype(np.float64), x)
            stats = sums(y, x if kind == "cuped_binomial" else None)
        elif kind in ("ratio", "ratio_cuped"):
            d = rng.poisson(3.0, n).astype(np.float64) + 1.0
            q = rng.poisson(3.0, n).astype(np.float64) + 1.0
            x = scale * rng.gamma(2.0, 1.0, n) * q
            y = 0.5 * x * d / q + scale * lift * rng.gamma(2.0, 1.0, n) * d
            stats = sums(y, x if kind == "ratio_cuped" else None, d, q if kind == "ratio_cuped" else None)
        else:
            x, e = correlated(rng, (n,), rho)
            y = scale * (5.0 * lift + e)
            stats = sums(y, scale * (5.0 + x) if kind == "cuped" else None)
        variations.append(variation("control" if arm == 0 else f"v{arm}", stats))
        lift = float(rng.uniform(0.9, 1.15))
    metric: Any = {"cuped": "mean", "cuped_binomial": "binomial", "ratio_cuped": "ratio"}.get(kind, kind)
    cuped = "cuped" in kind
    return AnalysisInput(metric=metric, variations=tuple(variations), cuped=cuped, **settings)


def gb_statistic(v: VariationData, kind: str) -> Any:
    """The gbstats 0.8.0 statistic object for one variation (fresh: gbstats mutates theta)."""
    from gbstats.models.statistics import (
        ProportionStatistic,
        RatioStatistic,
        RegressionAdjustedStatistic,
        SampleMeanStatistic,
    )

    def base(total: float | None, squares: float | None, binomial: bool) -> Any:
        if binomial:
            return ProportionStatistic(n=v.users, sum=total)
        return SampleMeanStatistic(n=v.users, sum=total, sum_squares=squares)

    binomial = kind in ("binomial", "cuped_binomial")
    main = base(v.main_sum, v.main_sum_squares, binomial)
    if kind in ("cuped", "cuped_binomial"):
        pre = base(v.covariate_sum, v.covariate_sum_squares, binomial)
        return RegressionAdjustedStatistic(
            n=v.users,
            post_statistic=main,
            pre_statistic=pre,
            post_pre_sum_of_products=v.main_covariate_sum_product,
            theta=0,
        )
    if kind == "ratio":
        den = base(v.denominator_sum, v.denominator_sum_squares, False)
        return RatioStatistic(
            n=v.users, m_statistic=main, d_statistic=den, m_d_sum_of_products=v.main_denominator_sum_product
        )
    return main


def gb_result(a: AnalysisInput, kind: str, arm: int = 1) -> Any:
    """gbstats 0.8.0 frequentist result of control vs variation `arm`."""
    from gbstats.frequentist.tests import (
        FrequentistConfig,
        SequentialConfig,
        SequentialTwoSidedTTest,
        TwoSidedTTest,
    )

    stat_a, stat_b = gb_statistic(a.variations[0], kind), gb_statistic(a.variations[arm], kind)
    if a.sequential:
        config = SequentialConfig(
            alpha=a.alpha, difference_type=a.difference_type, sequential_tuning_parameter=a.sequential_tuning_parameter
        )
        return SequentialTwoSidedTTest(stat_a, stat_b, config).compute_result()
    return TwoSidedTTest(
        stat_a, stat_b, FrequentistConfig(alpha=a.alpha, difference_type=a.difference_type)
    ).compute_result()


def gb_bayesian_result(a: AnalysisInput, kind: str, arm: int = 1, inverse: bool = False) -> Any:
    """gbstats 0.8.0 Bayesian result (`EffectBayesianABTest`) of control vs variation `arm`.

    The analysis' prior becomes gbstats' `GaussianPrior` (proper when given) with its
    `prior_type` (the analysis' difference type when not given).
    """
    from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior

    if a.prior_mean is None or a.prior_stddev is None:
        prior = GaussianPrior()
    else:
        prior = GaussianPrior(mean=a.prior_mean, variance=a.prior_stddev**2, proper=True)
    config = EffectBayesianConfig(
        alpha=a.alpha,
        difference_type=a.difference_type,
        inverse=inverse,
        prior_effect=prior,
        prior_type=a.prior_type or a.difference_type,
    )
    stat_a, stat_b = gb_statistic(a.variations[0], kind), gb_statistic(a.variations[arm], kind)
    return EffectBayesianABTest(stat_a, stat_b, config).compute_result()
