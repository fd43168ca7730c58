"""Template filters that name a result's metric as people read it.

    {% load result_words %}
    {{ metric|metric_title }}   Revenue per user by day 30
    {{ metric|kind_words }}     lifetime value: each user's total from exposure to day 30; counts …
"""

from __future__ import annotations

from django import template

from experiments.readout import MetricReadout
from pages.presentation.formatting import kind_words as _kind_words
from pages.presentation.formatting import metric_title as _metric_title

register = template.Library()


@register.filter
def metric_title(metric: MetricReadout) -> str:
    return _metric_title(metric.name, metric.kind, metric.day)


@register.filter
def kind_words(metric: MetricReadout) -> str:
    return _kind_words(metric.kind, metric.day)
