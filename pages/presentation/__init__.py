"""How a readout is shown to people: pure view models, the recommendation, charts and numbers.

Pure (no Django): the result pages and the exports hand it a stored readout and the reader's
choices; it returns frozen rows, badges and SVG text that templates only lay out. Modules:
`viewmodels` (a snapshot as rows per metric and slice, the toggles a page offers), `badges`
(list-page badges and the sample-ratio explanation), `recommendation` (the verdict and the
power panel), `charts` (forest plot, trend and users charts as SVG), `formatting`
(estimates, intervals, p-values and shares as text; the unit a difference reads in: percent,
percentage points for absolute differences of rates, or the metric's units) and `planning`
(the guided creation's users and days for a target lift, and the remedies of an underpowered
plan) and `growth` (the growth page: shipped lifts raw and corrected for the winner's curse,
their sum beside a holdout's measured lift with the gap in words, the north star's level chart).
"""

from pages.presentation.badges import Badge, ListFacts, list_badges, srm_explanation
from pages.presentation.charts import ForestRow, Series, TrendPoint, forest_plot, trend_chart, users_chart
from pages.presentation.formatting import (
    Unit,
    difference_unit,
    fmt_estimate,
    fmt_interval,
    fmt_mean,
    fmt_number,
    fmt_p,
    fmt_share,
    unit_words,
)
from pages.presentation.planning import MAX_PLANNED_DAYS, Plan, PlanInput, plan_experiment
from pages.presentation.recommendation import PowerPanel, Recommendation, decision_words, power_panel, recommend
from pages.presentation.viewmodels import (
    ResultRow,
    SliceRow,
    SnapshotData,
    Toggles,
    choose_toggles,
    judge,
    parse_snapshot,
    result_rows,
    slice_rows,
)

__all__ = [
    "MAX_PLANNED_DAYS",
    "Badge",
    "ForestRow",
    "ListFacts",
    "Plan",
    "PlanInput",
    "PowerPanel",
    "Recommendation",
    "ResultRow",
    "Series",
    "SliceRow",
    "SnapshotData",
    "Toggles",
    "TrendPoint",
    "Unit",
    "choose_toggles",
    "decision_words",
    "difference_unit",
    "fmt_estimate",
    "fmt_interval",
    "fmt_mean",
    "fmt_number",
    "fmt_p",
    "fmt_share",
    "forest_plot",
    "judge",
    "list_badges",
    "parse_snapshot",
    "plan_experiment",
    "power_panel",
    "recommend",
    "result_rows",
    "slice_rows",
    "srm_explanation",
    "trend_chart",
    "unit_words",
    "users_chart",
]
