"""The Bayesian engine on simulated experiments (20,000 experiments per check).

Under the prior (true effects drawn from it) a 95% credible interval covers the true effect
in 95% of experiments, chance to win is calibrated and the mean risk is the mean realised
loss; under A/A with a flat prior chance to win is uniform.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

import stats
from stats.simulation import LookSums, simulate_arms, simulate_sums

EXPERIMENTS, USERS_PER_ARM = 20_000, 1000


@pytest.fixture(scope="module")
def normal() -> tuple[LookSums, LookSums]:
    return simulate_sums(np.random.default_rng(71), experiments=EXPERIMENTS, users_per_arm=USERS_PER_ARM, kind="normal")


@pytest.fixture(scope="module")
def conversion() -> tuple[LookSums, LookSums]:
    # More users: with 1,000 a 10% rate moves in steps large enough to bunch the chances.
    return simulate_sums(np.random.default_rng(72), experiments=EXPERIMENTS, users_per_arm=5000, kind="conversion")


def test_simulate_sums__same_distribution_as_summed_users() -> None:
    """The sums drawn directly have the moments of sums of drawn users."""
    rng = np.random.default_rng(70)
    for kind in ("normal", "conversion"):
        direct = simulate_sums(rng, experiments=4000, users_per_arm=200, kind=kind)[0]
        users = simulate_arms(rng, experiments=4000, users_per_arm=200, kind=kind)[0]
        for a, b in ((direct.main_sum, users.main_sum), (direct.main_sum_squares, users.main_sum_squares)):
            assert np.mean(a) == pytest.approx(np.mean(b), rel=0.01)
            assert np.std(a) == pytest.approx(np.std(b), rel=0.06)


def _bayes(control: LookSums, treatment: LookSums, metric: str = "mean", **options: object) -> stats.ComparisonArrays:
    out = stats.compare_arrays(control.at(-1), treatment.at(-1), metric=metric, engine="bayesian", **options)  # type: ignore[arg-type]
    assert (out.error == -1).all()
    return out


# Priors about as wide as the standard error (relative 0.0134, absolute 0.134 here), so that the
# prior matters: the posterior is pulled halfway toward the prior mean.
CASES = [
    ("absolute", 0.0, 0.15),
    ("absolute", 0.1, 0.15),
    ("relative", 0.0, 0.02),
    ("relative", 0.03, 0.02),
]


@pytest.mark.parametrize(("difference_type", "prior_mean", "prior_stddev"), CASES)
def test_credible_interval__effects_drawn_from_the_prior__covers_95_percent(
    normal: tuple[LookSums, LookSums], difference_type: str, prior_mean: float, prior_stddev: float
) -> None:
    rng = np.random.default_rng(73)
    effect = rng.normal(prior_mean, prior_stddev, EXPERIMENTS)
    control, base = normal
    treatment = base.shifted(effect) if difference_type == "absolute" else base.scaled(1.0 + effect)
    out = _bayes(control, treatment, difference_type=difference_type, prior_mean=prior_mean, prior_stddev=prior_stddev)
    covered = (out.ci_low <= effect) & (effect <= out.ci_high)
    assert np.mean(covered) == pytest.approx(0.95, abs=0.01)
    # Chance to win is calibrated: of experiments given chance c, a share c truly wins.
    wins = effect > 0
    bins = np.digitize(out.chance_to_win, np.linspace(0.1, 0.9, 9))
    for b in np.unique(bins):
        members = bins == b
        if members.sum() >= 500:
            claimed = float(np.mean(out.chance_to_win[members]))
            tolerance = 4 * np.sqrt(claimed * (1 - claimed) / members.sum())
            assert np.mean(wins[members]) == pytest.approx(claimed, abs=tolerance)
    # Risk is the expected loss: on average it equals the loss each decision actually incurred.
    for risk, loss in ((out.risk_control, np.maximum(effect, 0)), (out.risk_treatment, np.maximum(-effect, 0))):
        standard_error = np.std(loss) / np.sqrt(EXPERIMENTS)
        assert np.mean(risk) == pytest.approx(np.mean(loss), abs=4 * standard_error)


def test_credible_interval__flat_prior__is_the_normal_interval_of_the_estimate(
    normal: tuple[LookSums, LookSums],
) -> None:
    control, treatment = normal
    frequentist = stats.compare_arrays(control.at(-1), treatment.at(-1), metric="mean")
    out = _bayes(control, treatment)
    np.testing.assert_allclose(out.estimate, frequentist.estimate, rtol=1e-12)
    np.testing.assert_allclose(out.variance, frequentist.variance, rtol=1e-12)
    np.testing.assert_allclose(out.chance_to_win, frequentist.chance_to_win, rtol=1e-12)
    half = special.ndtri(0.975) * np.sqrt(out.variance)
    np.testing.assert_allclose(out.ci_high - out.ci_low, 2 * half, rtol=1e-9)


@pytest.mark.parametrize(
    ("kind", "metric", "difference_type"),
    [("normal", "mean", "relative"), ("normal", "mean", "absolute"), ("conversion", "binomial", "absolute")],
)
def test_chance_to_win__a_a_flat_prior__uniform(
    normal: tuple[LookSums, LookSums],
    conversion: tuple[LookSums, LookSums],
    kind: str,
    metric: str,
    difference_type: str,
) -> None:
    """Chance to win is Phi(z), uniform when z is standard normal. (The relative lift of a 10%
    rate is not quite: its delta-method z is skewed, see docs/statistics.md.)"""
    arms = normal if kind == "normal" else conversion
    chance = _bayes(*arms, metric=metric, difference_type=difference_type).chance_to_win
    # Each decile holds 10% (standard error 0.2 points at 20,000 experiments).
    deciles = np.histogram(chance, bins=np.linspace(0, 1, 11))[0] / EXPERIMENTS
    np.testing.assert_allclose(deciles, 0.1, atol=0.01)
    assert np.mean(chance > 0.95) == pytest.approx(0.05, abs=0.007)
    assert np.mean(chance < 0.05) == pytest.approx(0.05, abs=0.007)


def test_chance_to_win__a_a_prior_centred_at_zero__pulled_toward_half(normal: tuple[LookSums, LookSums]) -> None:
    """With a prior N(0, tau^2), chance = Phi(z * k), k = sqrt(tau^2 / (tau^2 + V)): fewer A/A tests
    reach 95% than with a flat prior, by the amount the formula says."""
    tau = 0.0134  # about the standard error of the relative lift here
    out = _bayes(*normal, prior_mean=0.0, prior_stddev=tau)
    flat = _bayes(*normal)
    data_variance = float(np.mean(flat.variance))
    k = np.sqrt(tau**2 / (tau**2 + data_variance))
    expected = special.ndtr(-special.ndtri(0.95) / k)
    assert np.mean(out.chance_to_win > 0.95) == pytest.approx(expected, abs=0.005)
    assert expected < 0.02
    assert np.std(out.chance_to_win) < np.std(flat.chance_to_win)
