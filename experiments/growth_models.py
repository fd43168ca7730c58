"""The project's north star: the metric growth is judged on, and the input metrics that drive it."""

from __future__ import annotations

from django.db import models


class NorthStar(models.Model):
    """One row (id 1): the north-star metric from the catalog and optional input metrics."""

    metric = models.ForeignKey("experiments.Metric", on_delete=models.PROTECT, related_name="+")
    input_metrics = models.ManyToManyField("experiments.Metric", related_name="+", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "north star"
        verbose_name_plural = "north star"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="north_star_single_row")]

    def __str__(self) -> str:
        return "North star"
