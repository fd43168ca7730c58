"""Day-N metrics in words: the title and the line under it on the result pages, and the day
carried by the stored readout document."""

from __future__ import annotations

from experiments.readout import MetricReadout, readout_compute, readout_from_json, readout_to_json
from pages.presentation.formatting import kind_words, metric_title
from tests.unit.experiments.readout.builders import readout_input


def test_metric_title__ltv__names_the_day_in_plain_words() -> None:
    assert metric_title("Revenue", "ltv", 30) == "Revenue per user by day 30"
    assert metric_title("Revenue", "mean", None) == "Revenue"
    assert metric_title("Day-7 retention", "retention", 7) == "Day-7 retention"


def test_kind_words__day_n_kinds__say_which_users_count() -> None:
    assert kind_words("ltv", 1) == ("lifetime value: each user's total from exposure to day 1; counts users exposed "
                                    "1 day or more before the readout")
    assert "exposed 365 days or more" in kind_words("ltv", 365)
    assert kind_words("retention", 7) == "retention on day 7; counts users exposed 8 days or more before the readout"
    assert kind_words("retention", 0).endswith("exposed 1 day or more before the readout")
    assert kind_words("count", None) == "count"


def test_readout_document__metric_day__written_only_where_set_and_read_back() -> None:
    readout = readout_compute(readout_input())
    document = readout_to_json(readout)
    assert all("day" not in m for m in document["metrics"])
    first = document["metrics"][0]
    first["day"] = 30
    back = readout_from_json(document)
    metric: MetricReadout = back.metrics[0]
    assert metric.day == 30 and back.metrics[1].day is None
    assert readout_to_json(back)["metrics"][0]["day"] == 30
