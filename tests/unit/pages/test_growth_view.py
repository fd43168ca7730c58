"""The growth page's view model: shipped lifts summed raw and corrected, the gap in words for
each case, and the level chart's edges."""

from __future__ import annotations

from datetime import date

from pages.presentation.growth import Effect, Measured, growth_view, level_chart


def _effects() -> list[Effect]:
    return [Effect("a", "A", 0.08, 0.02, 0.14, 0.05, True), Effect("b", "B", 0.03, -0.01, 0.07, 0.05, True),
            Effect("c", "C", -0.01, -0.05, 0.03, 0.05, False)]


def test_growth_view__sum_and_corrected_and_words_by_case() -> None:
    inside = growth_view(effects=_effects(), measured=Measured("h", 0.09, 0.05, 0.13), running=[])
    assert [r.key for r in inside.shipped] == ["a", "b"]
    assert inside.naive_sum == "+11.0%"
    assert "inside the holdout's interval" in inside.gap_words
    above = growth_view(effects=_effects(), measured=Measured("h", 0.02, 0.0, 0.04), running=[])
    assert "overstates" in above.gap_words and "winner's curse" in above.gap_words
    below = growth_view(effects=_effects(), measured=Measured("h", 0.2, 0.15, 0.25), running=[])
    assert "more than the sum" in below.gap_words
    none = growth_view(effects=_effects(), measured=None, running=[])
    assert "upper estimate" in none.gap_words
    empty = growth_view(effects=[], measured=None, running=[])
    assert empty.shipped == () and "nothing to add up" in empty.gap_words
    # The corrected lifts are smaller in size than the raw ones.
    assert all(abs(float(r.corrected.rstrip("%"))) <= abs(float(r.lift.rstrip("%"))) for r in inside.shipped)


def test_level_chart__line_and_edge_dates_or_a_message() -> None:
    svg = level_chart([(date(2026, 1, 1), 0.5), (date(2026, 1, 2), 0.7)])
    assert 'class="level-line"' in svg and 'text-anchor="end"' in svg and "2026-01-02" in svg
    assert "No events" in level_chart([])
