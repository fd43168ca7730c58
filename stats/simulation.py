"""Simulated experiments for validating the engine (tests and bench/simulate.py).

Users are drawn with numpy, many experiments at a time, and reduced to the same
cumulative sufficient statistics the warehouse would return at each look. A treatment
effect on a continuous metric multiplies every treated user's value by (1 + lift), so its
sufficient statistics are exact rescalings of the untreated ones: one draw serves a whole
power curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np

from stats.engine import ArmArrays
from stats.types import FloatArray

Kind: TypeAlias = Literal["revenue", "conversion", "normal"]

# Revenue per user: Bernoulli(0.2) buyers spending LogNormal(3, 1), zeros for the rest.
BUY_RATE, LOG_MEAN, LOG_SD = 0.2, 3.0, 1.0
CONVERSION_RATE = 0.1
NORMAL_MEAN, NORMAL_SD = 10.0, 3.0


def population_moments(kind: Kind) -> tuple[float, float]:
    """True per-user mean and standard deviation of a simulated metric."""
    if kind == "revenue":
        mean = BUY_RATE * np.exp(LOG_MEAN + LOG_SD**2 / 2)
        second = BUY_RATE * np.exp(2 * LOG_MEAN + 2 * LOG_SD**2)
        return float(mean), float(np.sqrt(second - mean**2))
    if kind == "conversion":
        return CONVERSION_RATE, float(np.sqrt(CONVERSION_RATE * (1 - CONVERSION_RATE)))
    return NORMAL_MEAN, NORMAL_SD


def draw_users(rng: np.random.Generator, kind: Kind, shape: tuple[int, ...]) -> FloatArray:
    """Per-user metric values."""
    if kind == "conversion":
        return (rng.random(shape) < CONVERSION_RATE).astype(np.float64)
    if kind == "normal":
        return NORMAL_MEAN + NORMAL_SD * rng.standard_normal(shape)
    y = np.zeros(shape)
    buyers = rng.random(shape) < BUY_RATE
    y[buyers] = rng.lognormal(LOG_MEAN, LOG_SD, int(buyers.sum()))
    return y


@dataclass(frozen=True, slots=True)
class LookSums:
    """Cumulative sufficient statistics of one arm, shape (experiments, looks)."""

    users: FloatArray  # (looks,)
    main_sum: FloatArray
    main_sum_squares: FloatArray
    covariate_sum: FloatArray | None
    covariate_sum_squares: FloatArray | None
    main_covariate_sum_product: FloatArray | None

    def scaled(self, factor: float | FloatArray) -> LookSums:
        """The same users with every metric value multiplied by `factor` (continuous metrics).

        `factor` is one number, or one per experiment (shape (experiments,)).
        """
        f = np.asarray(factor, dtype=np.float64).reshape(-1, 1)
        return LookSums(
            self.users,
            self.main_sum * f,
            self.main_sum_squares * f * f,
            self.covariate_sum,
            self.covariate_sum_squares,
            None if self.main_covariate_sum_product is None else self.main_covariate_sum_product * f,
        )

    def shifted(self, delta: float | FloatArray) -> LookSums:
        """The same users with `delta` added to every metric value (one number or one per experiment):
        sums of y + delta follow from the sums of y, so the draw serves any effect."""
        d = np.asarray(delta, dtype=np.float64).reshape(-1, 1)
        n = self.users.reshape(1, -1)
        return LookSums(
            self.users,
            self.main_sum + n * d,
            self.main_sum_squares + 2.0 * d * self.main_sum + n * d * d,
            self.covariate_sum,
            self.covariate_sum_squares,
            None
            if self.main_covariate_sum_product is None or self.covariate_sum is None
            else self.main_covariate_sum_product + d * self.covariate_sum,
        )

    def at(self, look: int | slice = slice(None)) -> ArmArrays:
        """Arm arrays at one look, or flattened over (experiment, look) for a slice of looks."""

        def pick(a: FloatArray) -> FloatArray:
            return np.ascontiguousarray(a[:, look]).reshape(-1)

        def pick_optional(a: FloatArray | None) -> FloatArray | None:
            return None if a is None else pick(a)

        users = np.broadcast_to(self.users[look], self.main_sum[:, look].shape).reshape(-1)
        return ArmArrays(
            users=users,
            main_sum=pick(self.main_sum),
            main_sum_squares=pick(self.main_sum_squares),
            covariate_sum=pick_optional(self.covariate_sum),
            covariate_sum_squares=pick_optional(self.covariate_sum_squares),
            main_covariate_sum_product=pick_optional(self.main_covariate_sum_product),
        )


def _arm(
    rng: np.random.Generator, kind: Kind, experiments: int, looks: int, per_look: int, rho: float | None, chunk: int
) -> LookSums:
    mean, sd = population_moments(kind)
    parts: dict[str, list[FloatArray]] = {k: [] for k in ("s", "q", "sx", "qx", "pxy")}
    for start in range(0, experiments, chunk):
        size = min(chunk, experiments - start)
        y = draw_users(rng, kind, (size, looks, per_look))
        parts["s"].append(y.sum(axis=2))
        parts["q"].append((y * y).sum(axis=2))
        if rho is not None:
            # corr(x, y) = rho exactly: a standardised copy of y plus independent noise.
            x = rho * (y - mean) / sd + np.sqrt(1.0 - rho * rho) * rng.standard_normal(y.shape)
            parts["sx"].append(x.sum(axis=2))
            parts["qx"].append((x * x).sum(axis=2))
            parts["pxy"].append((x * y).sum(axis=2))
    cumulative = {k: np.cumsum(np.concatenate(v), axis=1) if v else None for k, v in parts.items()}
    users = per_look * np.arange(1, looks + 1, dtype=np.float64)
    s, q = cumulative["s"], cumulative["q"]
    assert s is not None and q is not None
    return LookSums(users, s, q, cumulative["sx"], cumulative["qx"], cumulative["pxy"])


def simulate_arms(
    rng: np.random.Generator,
    *,
    experiments: int,
    users_per_arm: int,
    looks: int = 1,
    kind: Kind = "revenue",
    rho: float | None = None,
    chunk: int = 200,
) -> tuple[LookSums, LookSums]:
    """Two identically distributed arms (an A/A test) for many experiments.

    With `rho`, each user also gets a pre-period covariate whose correlation with the
    metric is exactly rho in the population: x = rho * z(y) + sqrt(1 - rho^2) * noise.
    """
    if users_per_arm % looks:
        raise ValueError("users_per_arm must be a multiple of looks")
    per_look = users_per_arm // looks
    control = _arm(rng, kind, experiments, looks, per_look, rho, chunk)
    return control, _arm(rng, kind, experiments, looks, per_look, rho, chunk)


def simulate_sums(
    rng: np.random.Generator, *, experiments: int, users_per_arm: int, kind: Literal["conversion", "normal"]
) -> tuple[LookSums, LookSums]:
    """Two identically distributed arms at one look, drawn as sums rather than users.

    The sums have exactly the distribution of the users' sums, at a cost independent of the
    number of users: a binomial count for conversions; for normal users the mean and the
    sample variance, which are independent, N(mu, sigma^2/n) and sigma^2 chi^2_{n-1}/(n-1).
    """
    n = users_per_arm
    users = np.array([float(n)])

    def arm() -> LookSums:
        if kind == "conversion":
            count = rng.binomial(n, CONVERSION_RATE, (experiments, 1)).astype(np.float64)
            return LookSums(users, count, count.copy(), None, None, None)
        total = n * NORMAL_MEAN + np.sqrt(n) * NORMAL_SD * rng.standard_normal((experiments, 1))
        squares = NORMAL_SD**2 * rng.chisquare(n - 1, (experiments, 1)) + total * total / n
        return LookSums(users, total, squares, None, None, None)

    control = arm()
    return control, arm()
