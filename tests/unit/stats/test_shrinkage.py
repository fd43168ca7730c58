"""Winner's-curse correction: golden numbers worked by hand, the limits, and by simulation the
shrunk effects err less than the raw ones when effects are drawn around zero."""

from __future__ import annotations

import math
import random

import pytest

from stats import shrink_effects


def test_shrink_effects__worked_example() -> None:
    # tau2 = mean(x^2 - s^2) = ((0.04 - 0.0001) + (0.0025 - 0.0004) + (0.0001 - 0.0001)) / 3
    result = shrink_effects([0.2, 0.05, -0.01], [0.01, 0.02, 0.01])
    tau2 = ((0.04 - 0.0001) + (0.0025 - 0.0004) + 0.0) / 3
    assert result.tau2 == pytest.approx(tau2)
    first = result.effects[0]
    assert first.factor == pytest.approx(tau2 / (tau2 + 0.0001))
    assert first.shrunk == pytest.approx(0.2 * tau2 / (tau2 + 0.0001))
    assert first.shrunk_std == pytest.approx(math.sqrt(tau2 * 0.0001 / (tau2 + 0.0001)))
    assert first.ci_low == pytest.approx(first.shrunk - 1.959963984540054 * first.shrunk_std)
    # The noisier effect is pulled further toward zero.
    assert result.effects[1].factor < first.factor


def test_shrink_effects__noise_explains_the_spread__everything_to_zero() -> None:
    result = shrink_effects([0.01, -0.01], [0.05, 0.05])
    assert result.tau2 == 0.0
    assert all(e.shrunk == 0.0 and e.ci_low == e.ci_high == 0.0 for e in result.effects)


def test_shrink_effects__bad_input__refused() -> None:
    assert shrink_effects([], []).effects == ()
    for estimates, errors in (([0.1], [0.0]), ([float("nan")], [0.1]), ([0.1, 0.2], [0.1])):
        with pytest.raises(ValueError):
            shrink_effects(estimates, errors)


def test_shrink_effects__simulated__lower_error_and_winners_less_overstated() -> None:
    rng = random.Random(7)
    raw_error = shrunk_error = winners_raw = winners_shrunk = winners_true = 0.0
    for _ in range(400):
        truths = [rng.gauss(0, 0.02) for _ in range(20)]
        errors = [rng.uniform(0.01, 0.04) for _ in range(20)]
        measured = [t + rng.gauss(0, s) for t, s in zip(truths, errors, strict=True)]
        result = shrink_effects(measured, errors)
        for truth, effect in zip(truths, result.effects, strict=True):
            raw_error += (effect.estimate - truth) ** 2
            shrunk_error += (effect.shrunk - truth) ** 2
            if effect.estimate / effect.std_error > 1.96:  # the ones that would ship
                winners_raw += effect.estimate
                winners_shrunk += effect.shrunk
                winners_true += truth
    assert shrunk_error < 0.7 * raw_error
    # Shipped winners' raw lifts overstate their truth; the shrunk ones much less.
    assert winners_raw > 1.5 * winners_true
    assert abs(winners_shrunk - winners_true) < 0.5 * (winners_raw - winners_true)
