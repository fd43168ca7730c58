"""Guarded rollouts: a flag's rollout rule in one environment raised step by step while its
guardrail metrics are watched, rolled back or paused on harm (`guarded.services`)."""

from django.db import models

from base.models import Environment
from experiments.models import Experiment, ResultSnapshot
from flags.models import Flag


class GuardedRollout(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        ROLLED_BACK = "rolled_back", "Rolled back"
        COMPLETED = "completed", "Completed (100%)"
        CANCELLED = "cancelled", "Cancelled"

    class OnHarm(models.TextChoices):
        ROLLBACK = "rollback", "Roll back to 0% (the flag serves its default)"
        PAUSE = "pause", "Pause at the current step"

    flag = models.ForeignKey(Flag, on_delete=models.PROTECT, related_name="guarded_rollouts")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="guarded_rollouts")
    # The rollout rule it guards: disabled while the guard's own experiment rule splits the traffic,
    # back at 100% when the rollout completes, at 0% when it is rolled back.
    rule_uid = models.CharField(max_length=40)
    variant = models.CharField(max_length=100)
    # Units not yet in the rollout are counted under this variant's key (the flag's default).
    control_variant = models.CharField(max_length=100)
    # The comparison: units in the rollout against units not yet in it, read out as an experiment.
    experiment = models.OneToOneField(Experiment, on_delete=models.PROTECT, related_name="guarded_rollout")
    # [{"percent": 5.0, "min_duration_seconds": 3600}, ...], increasing, the last at 100.
    steps = models.JSONField()
    # [{"metric": key, "direction": "higher" | "lower", "threshold": 0.02 | null}, ...]
    guardrails = models.JSONField()
    on_harm = models.CharField(max_length=10, choices=OnHarm.choices, default=OnHarm.ROLLBACK)
    alpha = models.FloatField(default=0.05)
    min_units = models.PositiveIntegerField(default=500)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    step = models.PositiveSmallIntegerField(default=0)
    step_started_at = models.DateTimeField()
    # The last readout the guard has judged (each is judged once).
    checked_snapshot = models.ForeignKey(ResultSnapshot, on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="+")
    reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule_uid"], condition=models.Q(status__in=["running", "paused"]),
                                    name="one_active_guard_per_rule"),
        ]

    def __str__(self) -> str:
        return f"{self.flag.key}@{self.environment.key} guarded rollout ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.RUNNING, self.Status.PAUSED)

    @property
    def percent(self) -> float:
        if self.status == self.Status.ROLLED_BACK:
            return 0.0
        return float(self.steps[self.step]["percent"])


class GuardDecision(models.Model):
    """What the guard did and why: every check of a readout (with each guardrail's interval) and
    every change of step or state."""

    class Action(models.TextChoices):
        STARTED = "started", "Started"
        CHECKED = "checked", "Checked a readout"
        ADVANCED = "advanced", "Advanced to the next step"
        HARMED = "harmed", "Found harm"
        ROLLED_BACK = "rolled_back", "Rolled back"
        PAUSED = "paused", "Paused"
        RESUMED = "resumed", "Resumed"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    rollout = models.ForeignKey(GuardedRollout, on_delete=models.CASCADE, related_name="decisions")
    at = models.DateTimeField()
    action = models.CharField(max_length=12, choices=Action.choices)
    step = models.PositiveSmallIntegerField()
    percent = models.FloatField()
    actor = models.CharField(max_length=150, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")
    snapshot = models.ForeignKey(ResultSnapshot, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Checks: {"units": [control, treatment], "srm": bool, "guardrails": [{"metric", "estimate", "ci_low",
    # "ci_high", "harmed"}]}
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["rollout", "at"], name="guard_decision_rollout_at")]

    def __str__(self) -> str:
        return f"{self.action} at step {self.step + 1}"
