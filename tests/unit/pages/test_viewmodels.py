"""The pure view models: snapshot JSON -> rows, verdicts, recommendations, charts.

No database: snapshots are written here in the stored shape (see `experiments.readouts`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest

from pages.presentation import charts
from pages.presentation.badges import ListFacts, list_badges, srm_explanation
from pages.presentation.formatting import fmt_risk
from pages.presentation.recommendation import decision_words, power_panel, recommend
from pages.presentation.viewmodels import choose_toggles, difference_unit, fmt_estimate, parse_snapshot, result_rows

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def comparison(estimate: float, low: float, high: float, p: float, *, variation: str = "treatment",
               **extra: Any) -> dict[str, Any]:
    return {"variation": variation, "difference_type": "relative", "estimate": estimate, "ci_low": low,
            "ci_high": high, "p_value": p, "chance_to_win": 0.5 + estimate, "cuped_applied": True,
            "variance_reduction": 0.3, "sequential": False, "error": None, **extra}


def metric(key: str, role: str, headline: dict[str, Any], *, direction: str = "higher", users: int = 5000,
           headline_mode: str = "sequential", fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = {
        "key": key, "name": key, "kind": "conversion", "role": role, "direction": direction,
        "headline": headline_mode, "cap": None,
        "variations": [{"key": "control", "users": users, "mean": 0.1, "stddev": 0.3},
                       {"key": "treatment", "users": users, "mean": 0.11, "stddev": 0.31}],
        "fixed": [fixed or headline], "cuped": [headline], "sequential": [headline],
        "comparisons": [{**headline, "significant": headline["ci_low"] > 0 or headline["ci_high"] < 0}],
    }
    if role == "guardrail":
        entry["guardrail"] = "ok"
    return entry


def snapshot(metrics: list[dict[str, Any]], *, srm: bool = False, sequential: bool = True,
             units: tuple[int, int] = (5000, 5000), min_sample: int = 100) -> dict[str, Any]:
    return {
        "id": 1, "status": "success", "created_at": NOW, "units": sum(units), "srm_p_value": 1e-6 if srm else 0.6,
        "srm_warning": srm, "multiple_exposure_units": 0, "multiple_exposure_share": 0.0, "guardrail_status": "ok",
        "variations": [
            {"key": "control", "name": "Control", "weight": 0.5, "units": units[0], "share": 0.5},
            {"key": "treatment", "name": "Treatment", "weight": 0.5, "units": units[1], "share": 0.5},
        ],
        "metrics": metrics, "warnings": [],
        "settings": {"alpha": 0.05, "difference_type": "relative", "sequential": sequential, "cuped": True,
                     "correction": "none", "min_sample_per_arm": min_sample, "sequential_tuning": 5000},
    }


WIN = comparison(0.08, 0.02, 0.14, 0.004)
FLAT = comparison(0.01, -0.05, 0.07, 0.7)
LOSS = comparison(-0.08, -0.14, -0.02, 0.004)


def decide(data: dict[str, Any], status: str = "running", mde: float | None = 0.05) -> Any:
    snap = parse_snapshot(data)
    panel = power_panel(snap, target_mde=mde, started_at=NOW - timedelta(days=10), now=NOW)
    return recommend(snap, status=status, power=panel, names={"treatment": "Treatment"})


def test_recommend__primary_win_no_guardrail_harm__ship_with_reason() -> None:
    rec = decide(snapshot([metric("buy", "primary", WIN), metric("errors", "guardrail", FLAT, direction="lower")]))
    assert rec.verdict == "ship" and rec.variation == "treatment"
    assert rec.reasons[0] == ("The always-valid (sequential) interval excludes zero on the primary metric: "
                              "buy +8.0% [+2.0%, +14.0%].")
    assert "No guardrail harmed." in rec.reasons


def test_recommend__guardrail_harmed__roll_back_even_with_a_primary_win() -> None:
    harmed = comparison(0.2, 0.05, 0.35, 0.001)  # errors up: lower is better, so this is harm
    rec = decide(snapshot([metric("buy", "primary", WIN), metric("errors", "guardrail", harmed, direction="lower")]))
    assert rec.verdict == "rollback"
    assert rec.reasons[0].startswith("Guardrail errors is worse for Treatment: +20.0%")
    assert "weigh the trade-off" in rec.reasons[1]


def test_recommend__primary_loss__roll_back() -> None:
    rec = decide(snapshot([metric("buy", "primary", LOSS)]))
    assert rec.verdict == "rollback" and "significantly worse on the primary metric" in rec.reasons[0]


def test_recommend__lower_is_better_primary_drop__ship() -> None:
    rec = decide(snapshot([metric("latency", "primary", LOSS, direction="lower")]))
    assert rec.verdict == "ship"


def test_recommend__srm__inconclusive_whatever_the_numbers() -> None:
    rec = decide(snapshot([metric("buy", "primary", WIN)], srm=True))
    assert rec.verdict == "inconclusive" and "sample ratio mismatch" in rec.summary


def test_recommend__below_minimum_sample__keep_running() -> None:
    rec = decide(snapshot([metric("buy", "primary", WIN, users=40)], units=(40, 40)))
    assert rec.verdict == "keep_running" and rec.summary == "Not enough data yet."


def test_recommend__flat_running__keep_running_flat_stopped__inconclusive() -> None:
    data = snapshot([metric("buy", "primary", FLAT)])
    running = decide(data)
    assert running.verdict == "keep_running"
    assert any("more users are needed to detect a 5.0% effect" in r for r in running.reasons)
    stopped = decide(data, status="stopped")
    assert stopped.verdict == "inconclusive"
    assert any("could detect effects of about" in r for r in stopped.reasons)


def test_recommend__fixed_horizon_win_before_planned_sample__keep_running() -> None:
    data = snapshot([metric("buy", "primary", WIN, headline_mode="cuped")], sequential=False)
    rec = decide(data, mde=0.01)  # a 1% target needs far more than 10,000 users
    assert rec.verdict == "keep_running" and "fixed-horizon test" in rec.reasons[1]
    assert decide(data, mde=0.5).verdict == "ship"  # planned sample reached
    unplanned = decide(data, mde=None)
    assert unplanned.verdict == "ship"
    assert any("no planned sample on record" in r for r in unplanned.reasons)


@pytest.mark.parametrize(("data", "status", "mde"), [
    (snapshot([metric("buy", "primary", WIN)]), "running", 0.05),
    (snapshot([metric("buy", "primary", LOSS)]), "running", 0.05),
    (snapshot([metric("buy", "primary", FLAT)]), "running", 0.05),
    (snapshot([metric("buy", "primary", FLAT)]), "stopped", 0.05),
    (snapshot([metric("buy", "primary", WIN)], srm=True), "running", 0.05),
    (snapshot([metric("buy", "primary", WIN, users=40)], units=(40, 40)), "running", 0.05),
    (snapshot([metric("buy", "primary", WIN, headline_mode="cuped")], sequential=False), "running", 0.01),
    (snapshot([metric("buy", "primary", WIN), metric("errors", "guardrail", comparison(0.2, 0.05, 0.35, 0.001),
                                                    direction="lower")]), "running", 0.05),
])
def test_recommend__label_and_summary__read_once(data: dict[str, Any], status: str, mde: float) -> None:
    # Shown as "<label>: <summary>": the summary never says the verdict again.
    rec = decide(data, status=status, mde=mde)
    first_word = rec.summary.split()[0].rstrip(":.").lower()
    assert first_word not in {"ship", "inconclusive", "roll", "keep"}, f"{rec.label}: {rec.summary}"


def test_recommend__ship__names_the_winner_once() -> None:
    rec = decide(snapshot([metric("buy", "primary", WIN)]))
    assert f"{rec.label}: {rec.summary}" == "Ship: Treatment beat the control on the primary metric."
    stopped = decide(snapshot([metric("buy", "primary", FLAT)]), status="stopped")
    assert f"{stopped.label}: {stopped.summary}" == "Inconclusive: No detectable difference on the primary metric."


@pytest.mark.parametrize(("decision", "variation", "words"), [
    ("ship", "Green button", "Green button shipped to everyone"),
    ("rollback", "", "rolled back: the flag serves what it served before"),
    ("", "", ""),
])
def test_decision_words__a_sentence_not_a_choice_label(decision: str, variation: str, words: str) -> None:
    assert decision_words(decision, variation) == words


def test_recommend__draft_none__no_snapshot_keep_running() -> None:
    assert recommend(None, status="draft", power=None) is None
    assert recommend(None, status="running", power=None).verdict == "keep_running"  # type: ignore[union-attr]


def test_power_panel__matches_the_closed_form() -> None:
    snap = parse_snapshot(snapshot([metric("buy", "primary", FLAT, headline_mode="fixed")], sequential=False))
    panel = power_panel(snap, target_mde=None, started_at=NOW - timedelta(days=10), now=NOW)
    assert panel is not None and panel.mde_now is not None
    # Relative MDE solves L = k * sqrt(s^2/mu^2 (1/n_B + (1+L)^2/n_A)), k = z_.975 + z_.8, s = 0.3, mu = 0.1.
    k, n, s2 = 1.959964 + 0.841621, 5000, 0.09 / 0.01
    lift = panel.mde_now
    assert lift == pytest.approx(k * (s2 * (1 / n + (1 + lift) ** 2 / n)) ** 0.5, rel=1e-4)
    assert panel.rate_per_day == pytest.approx(1000)


def test_result_rows__toggles_pick_stored_analyses() -> None:
    fixed = comparison(0.03, -0.01, 0.07, 0.2)
    data = snapshot([metric("buy", "primary", WIN, headline_mode="cuped", fixed=fixed)], sequential=False)
    snap = parse_snapshot(data)
    on = choose_toggles(snap, cuped=True, relative=None)
    off = choose_toggles(snap, cuped=False, relative=None)
    assert (on.mode, off.mode) == ("cuped", "fixed")
    assert result_rows(snap, on, ("primary",))[0].interval == "[+2.0%, +14.0%]"
    assert result_rows(snap, off, ("primary",))[0].interval == "[-1.0%, +7.0%]"
    assert result_rows(snap, off, ("primary",))[0].tone == "neutral"
    absolute = choose_toggles(snap, cuped=True, relative=False)
    assert absolute.difference_type == "relative" and "relative results only" in absolute.type_note


def test_result_rows__both_difference_types_stored__absolute_offered() -> None:
    data = snapshot([metric("buy", "primary", WIN, headline_mode="cuped")], sequential=False)
    absolute = {**WIN, "difference_type": "absolute", "estimate": 0.008, "ci_low": 0.002, "ci_high": 0.014}
    data["metrics"][0]["cuped"] = {"relative": [WIN], "absolute": [absolute]}
    snap = parse_snapshot(data)
    toggles = choose_toggles(snap, cuped=True, relative=False)
    assert toggles.difference_type == "absolute" and set(toggles.types_available) == {"absolute", "relative"}
    assert result_rows(snap, toggles, ("primary",))[0].estimate == "+0.80 pp"  # a conversion rate: percentage points


def test_srm_explanation__plain_words() -> None:
    snap = parse_snapshot(snapshot([metric("buy", "primary", WIN)], srm=True, units=(5400, 4600)))
    text = srm_explanation(snap)
    assert "asked for Control 50.0%, Treatment 50.0%" in text
    assert "Control 54.0% (5,400), Treatment 46.0% (4,600)" in text and "less than 1 in 1,000" in text


def test_list_badges__each_problem_named() -> None:
    facts = ListFacts(status="running", min_sample=100, arm_units=(50, 60), srm_warning=True, srm_p_value=1e-5,
                      multiple_exposure_share=0.03, guardrail_status="failing", has_snapshot=True, last_failed=True)
    assert [b.code for b in list_badges(facts)] == [
        "failed", "srm", "multiple_exposures", "guardrail", "not_enough_data"]
    assert [b.code for b in list_badges(ListFacts(status="running", min_sample=100))] == ["no_data"]
    healthy = ListFacts(status="running", min_sample=100, arm_units=(500, 500), has_snapshot=True)
    assert list_badges(healthy) == []


def test_formatting__signs_and_units() -> None:
    assert fmt_estimate(0.1234, "percent") == "+12.3%"
    assert fmt_estimate(-0.0004, "percent") == "-0.04%"
    assert fmt_estimate(1234.5, "units") == "+1,234"


@pytest.mark.parametrize(("value", "text"), [
    (0.0025, "0.25%"), (0.001, "0.1%"), (0.0123, "1.2%"), (0.25, "25%"), (0.00001, "<0.01%"), (0.0, "0%"),
    (None, "—"),
])
def test_formatting__risk__thresholds_read_as_set(value: float | None, text: str) -> None:
    assert fmt_risk(value) == text


@pytest.mark.parametrize(("kind", "dtype", "value", "text"), [
    ("conversion", "absolute", 0.0171, "+1.71 pp"),
    ("retention", "absolute", -0.004, "-0.40 pp"),
    ("funnel", "absolute", 0.0, "0 pp"),
    ("conversion", "relative", 0.0171, "+1.7%"),
    ("mean", "absolute", 0.0171, "+0.0171"),
    ("ratio", "absolute", -0.25, "-0.25"),
])
def test_formatting__difference_of_rates__percentage_points(kind: str, dtype: str, value: float, text: str) -> None:
    assert fmt_estimate(value, difference_unit(kind, dtype)) == text


def test_charts__percentage_points__ticks_and_tooltips() -> None:
    rows = [charts.ForestRow("purchase · B", 0.0171, 0.0062, 0.028, "good")]
    forest = charts.forest_plot(rows, unit="pp")
    assert "purchase · B: +1.71 pp (interval +0.62 pp to +2.80 pp)" in forest
    assert ">0 pp<" in forest and ">+1.00 pp<" in forest
    points = [charts.TrendPoint(NOW + timedelta(days=i), 0.0171, 0.0062, 0.028) for i in range(3)]
    assert "+1.71 pp (+0.62 pp to +2.80 pp)" in charts.trend_chart([("B", points)], unit="pp")


def test_charts__well_formed_svg_with_escaped_text() -> None:
    rows = [charts.ForestRow("<script>x</script> · B", 0.1, 0.02, 0.18, "good", "Goal"),
            charts.ForestRow("empty", None, None, None)]
    forest = ElementTree.fromstring(charts.forest_plot(rows, unit="percent"))
    assert "<script>" not in ElementTree.tostring(forest, encoding="unicode").replace("&lt;script&gt;", "")
    points = [charts.TrendPoint(NOW + timedelta(days=i), 0.05, 0.05 - 0.1 / (i + 1), 0.05 + 0.1 / (i + 1))
              for i in range(5)]
    trend = ElementTree.fromstring(charts.trend_chart([("B & C", points)], unit="percent"))
    assert trend.find("{http://www.w3.org/2000/svg}polygon") is not None
    users = ElementTree.fromstring(charts.users_chart([charts.Series("A", ((NOW, 10.0), (NOW + timedelta(1), 20.0)))]))
    assert users.attrib["class"] == "chart users-chart"
    assert "No intervals" in charts.forest_plot([], unit="percent")
    assert charts.nice_ticks(-0.013, 0.142) == [-0.05, 0.0, 0.05, 0.1, 0.15]
