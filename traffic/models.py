"""Layers and holdouts: how the hash space is shared between experiments."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from base.models import KEY_VALIDATOR


class Layer(models.Model):
    """A named hash space (a GrowthBook namespace): experiments in it own disjoint ranges."""

    key = models.CharField(max_length=64, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Holdout(models.Model):
    """A share of units kept out of every experiment in scope, to measure cumulative impact."""

    key = models.CharField(max_length=64, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    share = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(0.5)])
    hash_attribute = models.CharField(max_length=100, default="id")
    seed = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    # While empty the holdout holds: its units keep the experience from before the experiments
    # in its scope, shipped ones included. Ending it releases them to the shipped experiences.
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def active(self) -> bool:
        return self.ended_at is None
