"""The aggregate's rows -> the readout's input, on unsaved model instances (no database): sums
per variation overall and per slice value, the largest values kept and the rest as "(other)"."""

from __future__ import annotations

from datetime import UTC, datetime

from experiments.mappers import MAX_SLICE_VALUES, readout_input
from experiments.models import Experiment, ExperimentMetric, Metric, Variation
from experiments.readout_sql import AggregateRow

END = datetime(2026, 3, 1, tzinfo=UTC)
VARIATIONS = [Variation(key="control", name="", weight=0.5), Variation(key="treatment", name="B", weight=0.5)]
LINKS = [
    ExperimentMetric(metric=Metric(key="buy", name="", kind="conversion", direction="higher"), role="primary"),
    ExperimentMetric(metric=Metric(key="spend", name="Spend", kind="mean", direction="higher", capping="percentile",
                                   capping_value=0.99), role="secondary"),
]


def _row(variation: int, country: str | None, units: int) -> AggregateRow:
    conversion = (units, units / 10, units / 10, units / 20, units / 20, units / 40)
    mean = (units, units * 3.0, units * 12.0, None, None, None)
    return AggregateRow(variation=variation, slices=(country,), units=units, sums=(conversion, mean))


def test_readout_input__rows__summed_per_variation_with_covariates_when_cuped() -> None:
    data = readout_input(experiment=Experiment(cuped=True), variations=VARIATIONS, weights=[0.4, 0.6], links=LINKS,
                         rows=[_row(0, "DE", 100), _row(0, "FR", 50), _row(1, "DE", 120), _row(5, "DE", 9)],
                         caps={"spend": 120.0}, slice_attributes=["country"], analysis_end=END, phase_number=2)
    assert data.overall.units == (150, 120)  # a row of an unknown variation is left out
    control = data.overall.metrics[0][0]
    assert (control.name, control.users, control.main_sum, control.covariate_sum) == ("control", 150, 15.0, 7.5)
    spend = data.overall.metrics[1][1]
    assert (spend.users, spend.main_sum, spend.covariate_sum) == (120, 360.0, None)  # NULL sums stay missing
    assert [(m.key, m.name, m.role, m.cap) for m in data.metrics] == [("buy", "buy", "primary", None),
                                                                      ("spend", "Spend", "secondary", 120.0)]
    assert data.settings.weights == (0.4, 0.6) and data.look.phase == 2 and data.look.caps == {"spend": 120.0}
    assert [(s.attribute, s.value, s.sums.units) for s in data.slices] == [("country", "DE", (100, 120)),
                                                                           ("country", "FR", (50, 0))]
    without = readout_input(experiment=Experiment(cuped=False), variations=VARIATIONS, weights=[0.5, 0.5],
                            links=LINKS, rows=[_row(0, "DE", 100)], caps={}, slice_attributes=[], analysis_end=END,
                            phase_number=1)
    assert without.overall.metrics[0][0].covariate_sum is None and without.slices == ()
    assert without.overall.metrics[0][1].users == 0


def test_readout_input__many_slice_values__largest_kept_rest_other_and_none_named() -> None:
    countries = [f"C{i:02d}" for i in range(MAX_SLICE_VALUES + 5)]
    rows = [_row(v, country, 1000 - i) for i, country in enumerate(countries) for v in (0, 1)]
    rows += [_row(0, None, 7)]
    data = readout_input(experiment=Experiment(cuped=True), variations=VARIATIONS, weights=[0.5, 0.5], links=LINKS,
                         rows=rows, caps={}, slice_attributes=["country"], analysis_end=END, phase_number=1)
    values = [s.value for s in data.slices]
    assert values == [*countries[:MAX_SLICE_VALUES], "(other)"]
    other = data.slices[-1].sums
    assert other.units == (sum(1000 - i for i in range(MAX_SLICE_VALUES, len(countries))) + 7,
                           sum(1000 - i for i in range(MAX_SLICE_VALUES, len(countries))))
    small = readout_input(experiment=Experiment(cuped=True), variations=VARIATIONS, weights=[0.5, 0.5], links=LINKS,
                          rows=[_row(0, None, 5), _row(1, "DE", 9)], caps={}, slice_attributes=["country"],
                          analysis_end=END, phase_number=1)
    assert [s.value for s in small.slices] == ["DE", "(none)"]
