"""Holdout readouts: what a holdout is measured on, in which environment, and its stored results.

A `HoldoutAnalysis` reads one holdout out in one environment: the units the holdout's tracking
rule reported (held out, or released to the experiments and shipped values of its scope)
compared on its metrics, with the same statistics as an experiment's readout. Its population
lives in the readout tables under a phase id of its own (`phase_key`), far above any
experiment phase's, so the readout SQL serves both without telling them apart.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from base.models import Environment
from traffic.models import Holdout

# Holdout analyses use phase ids from here on in the readout tables (experiments_assignment,
# the rollup partitions, slice keys): experiment phases never come near.
HOLDOUT_PHASE_BASE = 2**52


class HoldoutAnalysis(models.Model):
    holdout = models.ForeignKey(Holdout, on_delete=models.PROTECT, related_name="analyses")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="holdout_analyses")
    metrics = models.ManyToManyField("experiments.Metric", through="HoldoutMetric", related_name="+")
    alpha = models.FloatField(default=0.05, validators=[MinValueValidator(0.001), MaxValueValidator(0.5)])
    difference_type = models.CharField(max_length=10, default="relative")
    sequential = models.BooleanField(default=False)
    cuped = models.BooleanField("CUPED", default=True)
    cuped_lookback_days = models.PositiveIntegerField("CUPED lookback days", default=14,
                                                      validators=[MaxValueValidator(90)])
    # Exposures of the holdout count from here on (and until the holdout ends).
    started_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["holdout_id", "environment_id"]
        constraints = [models.UniqueConstraint(fields=["holdout", "environment"], name="holdout_analysis_unique")]

    def __str__(self) -> str:
        return f"{self.holdout.key}@{self.environment.key}"

    @property
    def phase_key(self) -> int:
        """The phase id of the analysis's population in the readout tables."""
        return HOLDOUT_PHASE_BASE + int(self.pk)


class HoldoutMetric(models.Model):
    analysis = models.ForeignKey(HoldoutAnalysis, on_delete=models.CASCADE, related_name="links")
    metric = models.ForeignKey("experiments.Metric", on_delete=models.PROTECT, related_name="holdout_links")
    role = models.CharField(max_length=10, default="primary")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["analysis_id", "position"]
        constraints = [models.UniqueConstraint(fields=["analysis", "metric"], name="holdout_metric_unique")]

    def __str__(self) -> str:
        return f"{self.analysis_id}:{self.metric_id} ({self.role})"


class HoldoutSnapshot(models.Model):
    """One readout of a holdout, failures included; `readout` is `readout_to_json(readout)`.

    Leased, retried and swept as an experiment's readout is (`experiments.readout_jobs`,
    `experiments.readout_sweep`): the same run facts (attempts, sent_at, heartbeat, lease)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    analysis = models.ForeignKey(HoldoutAnalysis, on_delete=models.CASCADE, related_name="snapshots")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, default="schedule")
    requested_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Runs started (a worker lost mid-run gives the task back to the broker), when the task
    # reached the broker, and a running readout's last sign of life and lease.
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    analysis_end = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True, default="")
    error = models.TextField(blank=True, default="")
    units = models.BigIntegerField(null=True, blank=True)
    readout = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["analysis", "-created_at"], name="holdout_snapshot_created"),
            models.Index(fields=["status"], name="holdout_snapshot_unfinished",
                         condition=models.Q(status__in=["queued", "running"])),
        ]

    def __str__(self) -> str:
        return f"{self.analysis} readout {self.pk} ({self.status})"
