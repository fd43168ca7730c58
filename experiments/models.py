"""Experiments, the metric catalog, and the tables that ingestion and readouts write.

Configuration rows (Metric, Experiment, Variation, ExperimentMetric, Phase) are written by
the services only. The high-volume tables (Unit, Event, Exposure, Assignment, UnitRollup)
are written in bulk with SQL by `experiments.ingestion` and `experiments.readout_sql`; they
carry no database foreign-key constraints because a per-row constraint check would cost more
than the insert itself, and rows there are never deleted one by one.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from base.models import KEY_VALIDATOR, Environment
from flags.models import Flag
from traffic.models import Holdout, Layer

# The longest a metric looks after a unit's first exposure: windows, retention days and LTV days.
MAX_METRIC_DAYS = 365


class Metric(models.Model):
    """A catalog entry: what is measured per unit after its first exposure."""

    class Kind(models.TextChoices):
        CONVERSION = "conversion", "Conversion (fired the event within the window)"
        MEAN = "mean", "Mean per unit (sum of event values: revenue, GMV)"
        COUNT = "count", "Count of events per unit"
        RATIO = "ratio", "Ratio (sum of numerator values / sum of denominator values)"
        RETENTION = "retention", "Retention (active on day N after exposure)"
        FUNNEL = "funnel", "Funnel step (reached the last step after the others, in order)"
        LTV = "ltv", "LTV at day N (sum of event values from exposure to day N)"

    class Capping(models.TextChoices):
        NONE = "none", "No capping"
        ABSOLUTE = "absolute", "Cap each unit's value at a fixed number"
        PERCENTILE = "percentile", "Cap each unit's value at a percentile computed per readout"

    class Direction(models.TextChoices):
        HIGHER = "higher", "Higher is better"
        LOWER = "lower", "Lower is better"

    key = models.CharField(max_length=100, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # The event measured (conversion, mean, count, retention) or the ratio's numerator.
    event_name = models.CharField(max_length=100, blank=True, default="")
    denominator_event = models.CharField(max_length=100, blank=True, default="")
    # Funnel: the event names of the steps, in order (at least two).
    funnel_steps = models.JSONField(default=list, blank=True)
    retention_day = models.PositiveIntegerField(null=True, blank=True)
    # LTV: the day N up to which a unit's event values are summed (1 to 365).
    ltv_day = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_METRIC_DAYS)])
    # Hours after the first exposure during which events count; None: no limit.
    window_hours = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(24 * MAX_METRIC_DAYS)])
    capping = models.CharField(max_length=12, choices=Capping.choices, default=Capping.NONE)
    # The cap (absolute) or the percentile in (0, 1) (percentile).
    capping_value = models.FloatField(null=True, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.HIGHER)
    owner = models.CharField(max_length=150, blank=True, default="")
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class DataSource(models.Model):
    """Where an experiment's exposures and events live when not in the service's own tables.

    `connection` holds the engine's settings and never a secret: secrets are named environment
    variables of the workers (`{"password_env": "WAREHOUSE_PASSWORD"}`). The queries are
    checked when stored (`experiments.warehouse.query_check`).
    """

    class Engine(models.TextChoices):
        DUCKDB = "duckdb", "DuckDB"
        POSTGRES = "postgres", "PostgreSQL"
        CLICKHOUSE = "clickhouse", "ClickHouse (chDB)"
        SPARK = "spark", "Spark SQL / Databricks"
        SNOWFLAKE = "snowflake", "Snowflake"

    key = models.CharField(max_length=100, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    engine = models.CharField(max_length=12, choices=Engine.choices)
    connection = models.JSONField(default=dict, blank=True)
    exposure_query = models.TextField(
        help_text="One SELECT returning unit_id, timestamp, experiment, variation; further columns are slice "
                  "attributes.")
    event_query = models.TextField(help_text="One SELECT returning unit_id, timestamp, name, value.")
    # Every statement the readouts and tests run is stopped after this long.
    timeout_seconds = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1), MaxValueValidator(3600)])
    # Served exposures of its experiments are appended to this table of the source (`[schema.]table`);
    # empty: not exported (`experiments.exposure_export`).
    exposure_export_table = models.CharField(max_length=200, blank=True, default="")
    # Exposures received up to this moment have been exported.
    exposures_exported_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Experiment(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        ARCHIVED = "archived", "Archived"

    class Decision(models.TextChoices):
        NONE = "", "No decision yet"
        SHIP = "ship", "Ship a variation"
        ROLLBACK = "rollback", "Roll back"

    class Correction(models.TextChoices):
        NONE = "none", "None"
        HOLM = "holm", "Holm (family-wise error)"
        BH = "bh", "Benjamini-Hochberg (false discovery rate)"

    class DifferenceType(models.TextChoices):
        RELATIVE = "relative", "Relative lift"
        ABSOLUTE = "absolute", "Absolute difference"

    class StatsEngine(models.TextChoices):
        FREQUENTIST = "frequentist", "Frequentist"
        BAYESIAN = "bayesian", "Bayesian"

    key = models.CharField(max_length=100, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200, blank=True, default="")
    hypothesis = models.TextField(blank=True, default="")
    description = models.TextField(blank=True, default="")
    owner = models.CharField(max_length=150, blank=True, default="")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="experiments")
    flag = models.ForeignKey(Flag, on_delete=models.PROTECT, related_name="experiments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)

    # Assignment: written onto the flag as an experiment rule when the experiment starts.
    hash_attribute = models.CharField(max_length=100, default="id")
    seed = models.CharField(max_length=100, blank=True, default="")
    coverage = models.FloatField(default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    condition = models.JSONField(default=dict, blank=True)
    # Keys of saved segments a unit must be in to enter (as a flag rule's segments).
    segments = models.JSONField(default=list, blank=True)
    layer = models.ForeignKey(Layer, on_delete=models.PROTECT, null=True, blank=True, related_name="experiments")
    range_start = models.FloatField(null=True, blank=True)
    range_end = models.FloatField(null=True, blank=True)
    holdout = models.ForeignKey(Holdout, on_delete=models.PROTECT, null=True, blank=True, related_name="experiments")
    rule_uid = models.CharField(max_length=40, blank=True, default="")

    # Analysis settings.
    alpha = models.FloatField(default=0.05, validators=[MinValueValidator(0.001), MaxValueValidator(0.5)])
    difference_type = models.CharField(max_length=10, choices=DifferenceType.choices, default=DifferenceType.RELATIVE)
    sequential = models.BooleanField(default=False)
    sequential_tuning = models.FloatField(default=5000.0)
    cuped = models.BooleanField("CUPED", default=True)
    cuped_lookback_days = models.PositiveIntegerField("CUPED lookback days", default=14,
                                                      validators=[MaxValueValidator(90)])
    correction = models.CharField(max_length=6, choices=Correction.choices, default=Correction.NONE)
    min_sample_per_arm = models.PositiveIntegerField(default=100)
    # The statistics engine, chosen when the experiment is created (the project's default when
    # not given). With the Bayesian engine an optional proper prior on the relative lift.
    stats_engine = models.CharField(max_length=12, choices=StatsEngine.choices, default=StatsEngine.FREQUENTIST)
    prior_enabled = models.BooleanField(
        default=False, help_text="Bayesian engine: use the prior below instead of a flat one.")
    prior_mean = models.FloatField(
        default=0.0, validators=[MinValueValidator(-1.0), MaxValueValidator(1.0)],
        help_text="Prior mean of the relative lift (0 = no change; -1 to 1).")
    prior_stddev = models.FloatField(
        default=0.3, validators=[MinValueValidator(0.001), MaxValueValidator(10.0)],
        help_text="Prior standard deviation of the relative lift (0.3 = GrowthBook's default; 0.001 to 10).")
    # Exposure attributes the results are sliced by (for example country, platform, plan).
    slice_attributes = models.JSONField(default=list, blank=True)
    # The smallest relative effect on the primary metric worth acting on (0.05 = +5%), planned
    # before the start; the power panel computes the users still needed for it.
    target_mde = models.FloatField(
        "target MDE", null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(10.0)],
        help_text="Smallest relative effect on the primary metric worth detecting (0.05 = 5%); above 0, at most 10.",
    )

    # Short lowercase slugs for finding experiments (the list page filters by them).
    tags = models.JSONField(default=list, blank=True)
    # Where the readouts read exposures and events; None: the service's own tables.
    data_source = models.ForeignKey(DataSource, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="experiments")

    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True, default=Decision.NONE)
    shipped_variation = models.CharField(max_length=100, blank=True, default="")
    decision_note = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "key"]
        indexes = [models.Index(fields=["status", "environment"], name="experiment_status_env")]

    def __str__(self) -> str:
        return self.key


class ProjectSettings(models.Model):
    """Settings of the whole project: one row (id 1), created on first read."""

    class StatsEngineDefault(models.TextChoices):
        SERVICE = "", "The service's default (STATS_ENGINE_DEFAULT)"
        FREQUENTIST = "frequentist", "Frequentist"
        BAYESIAN = "bayesian", "Bayesian"

    # The engine a new experiment gets when its creation does not name one; empty: the
    # STATS_ENGINE_DEFAULT setting.
    stats_engine_default = models.CharField(
        "default statistics engine", max_length=12, choices=StatsEngineDefault.choices, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "project settings"
        verbose_name_plural = "project settings"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="project_settings_single_row")]

    def __str__(self) -> str:
        return "Project settings"

    @property
    def key(self) -> str:
        """The settings' name in the audit log."""
        return "project"


class Variation(models.Model):
    """One arm; its key is a variant of the experiment's flag. The first is the control."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variations")
    key = models.CharField(max_length=100, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200, blank=True, default="")
    weight = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["experiment_id", "position"]
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="variation_unique_key")]

    def __str__(self) -> str:
        return f"{self.experiment.key}:{self.key}"


class ExperimentMetric(models.Model):
    class Role(models.TextChoices):
        PRIMARY = "primary", "Primary"
        SECONDARY = "secondary", "Secondary"
        GUARDRAIL = "guardrail", "Guardrail"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="experiment_metrics")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="experiment_metrics")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.SECONDARY)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["experiment_id", "position"]
        constraints = [models.UniqueConstraint(fields=["experiment", "metric"], name="experiment_metric_unique")]

    def __str__(self) -> str:
        return f"{self.experiment.key}:{self.metric.key} ({self.role})"


class Phase(models.Model):
    """A period with one configuration; a weight, coverage or targeting change starts the next."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="phases")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    weights = models.JSONField(default=list)
    coverage = models.FloatField(default=1.0)
    condition = models.JSONField(default=dict, blank=True)
    segments = models.JSONField(default=list, blank=True)
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["experiment_id", "number"]
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="phase_unique_number")]

    def __str__(self) -> str:
        return f"{self.experiment.key} phase {self.number}"


class RampStep(models.Model):
    """A planned coverage raise of a running experiment, applied at `apply_at` by the scheduler.

    Raising coverage keeps every unit already in its variation, so an applied step continues
    the current phase. A step that no longer raises coverage when it is due (or whose experiment
    is no longer running) is skipped with the reason; a new schedule cancels the planned steps.
    """

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        APPLIED = "applied", "Applied"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="ramp_steps")
    coverage = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    apply_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLANNED)
    applied_at = models.DateTimeField(null=True, blank=True)
    phase_number = models.PositiveSmallIntegerField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True, default="")
    requested_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["experiment_id", "apply_at", "id"]
        indexes = [models.Index(fields=["status", "apply_at"], name="rampstep_due")]

    def __str__(self) -> str:
        return f"{self.experiment.key} to {self.coverage:.0%} at {self.apply_at:%Y-%m-%d %H:%M}"


# High-volume tables -------------------------------------------------------------------------


class Unit(models.Model):
    """A unit id (an SDK's targetingKey) of one environment, mapped to an integer key.

    Events and exposures refer to units by this integer so that the readout joins compare
    eight-byte integers instead of text.
    """

    id = models.BigAutoField(primary_key=True)
    environment = models.ForeignKey(
        Environment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    # Opaque ids: byte order ("C") makes every index probe a memcmp instead of a locale compare.
    key = models.CharField(max_length=256, db_collation="C")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["environment", "key"], name="unit_unique_key")]

    def __str__(self) -> str:
        return self.key


class Event(models.Model):
    """A metric event; idempotent by the client's event id within the environment."""

    pk = models.CompositePrimaryKey("environment", "client_id")
    environment = models.ForeignKey(
        Environment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    client_id = models.CharField(max_length=128, db_collation="C")
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    name = models.CharField(max_length=100)
    value = models.FloatField(default=1.0)
    ts = models.DateTimeField()
    received_at = models.DateTimeField()
    properties = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            # Readouts recompute the units that saw new activity: their events, by time, read
            # from the index alone (name and value included).
            models.Index(fields=["unit", "ts"], include=["name", "value"], name="event_unit_ts_cover"),
            # What arrived since the last readout; BRIN because rows arrive in time order.
            BrinIndex(fields=["received_at"], name="event_received_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.ts:%Y-%m-%d %H:%M:%S}"


class Exposure(models.Model):
    """One reported exposure, as sent; the per-unit view the readouts use is `Assignment`."""

    pk = models.CompositePrimaryKey("environment", "client_id")
    environment = models.ForeignKey(
        Environment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    client_id = models.CharField(max_length=160, db_collation="C")
    experiment = models.ForeignKey(
        Experiment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    phase = models.ForeignKey(Phase, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    variation = models.SmallIntegerField()
    ts = models.DateTimeField()
    received_at = models.DateTimeField()
    attributes = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"exposure {self.client_id}"


class Assignment(models.Model):
    """A unit's first exposure in a phase: its variation, when, and the attributes for slicing.

    `multiple` is set once the unit has been seen in two variations of the phase; such units
    are counted and left out of the analysis.
    """

    pk = models.CompositePrimaryKey("phase", "unit")
    phase = models.ForeignKey(Phase, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    experiment = models.ForeignKey(
        Experiment, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    variation = models.SmallIntegerField()
    first_seen = models.DateTimeField()
    attributes = models.JSONField(null=True, blank=True)
    multiple = models.BooleanField(default=False)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["phase", "updated_at"], name="assignment_phase_updated"),
            models.Index(fields=["phase"], condition=models.Q(multiple=True), name="assignment_multiple"),
        ]

    def __str__(self) -> str:
        return f"unit {self.unit_id} in phase {self.phase_id}"


# Value columns of a rollup row: metrics are packed into them (a metric takes one to four:
# its value, the pre-exposure covariate, the ratio denominator and its pre-exposure value);
# an experiment with more metrics than fit uses several rows per unit ("parts").
ROLLUP_COLUMNS = 64


class SliceKey(models.Model):
    """A combination of slice values seen in a phase (e.g. country DE, platform ios), by number.

    Rollup rows refer to it by this integer, so that summing a million units per combination
    groups by an integer instead of hashing text arrays.
    """

    id = models.BigAutoField(primary_key=True)
    phase = models.ForeignKey(Phase, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    slices = ArrayField(models.TextField(null=True), default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["phase", "slices"], name="slicekey_unique")]

    def __str__(self) -> str:
        return f"{self.slices} in phase {self.phase_id}"


class UnitRollup(models.Model):
    """Per-unit metric values of one phase, kept up to date by the readouts.

    Derived data, rebuilt from events whenever needed: the table is partitioned by phase and
    every partition is unlogged (see migration 0004), so a rebuild empties one partition
    instantly and leaves no dead rows. Values are uncapped: capping is applied when the
    readout aggregates, because percentile caps change with every readout. Plain columns
    rather than an array keep the aggregation cheap and parallel.
    """

    pk = models.CompositePrimaryKey("phase", "part", "unit")
    phase = models.ForeignKey(Phase, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    part = models.SmallIntegerField(default=0)
    unit = models.ForeignKey(Unit, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+")
    variation = models.SmallIntegerField()
    first_seen = models.DateTimeField()
    slice = models.ForeignKey(SliceKey, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                              related_name="+")

    def __str__(self) -> str:
        return f"rollup of unit {self.unit_id} in phase {self.phase_id}"


for _column in range(ROLLUP_COLUMNS):
    UnitRollup.add_to_class(f"v{_column}", models.FloatField(null=True, blank=True))


class ReadoutState(models.Model):
    """Bookkeeping of a phase's rollup: which layout it was built with and how fresh it is."""

    phase = models.OneToOneField(Phase, on_delete=models.CASCADE, primary_key=True, related_name="readout_state")
    layout_hash = models.CharField(max_length=64)
    # Rows received from this moment on (minus a safety overlap) are looked at next time.
    watermark = models.DateTimeField()
    rebuilt_at = models.DateTimeField()
    refreshed_at = models.DateTimeField()
    units = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"readout state of phase {self.phase_id}"


class ResultSnapshot(models.Model):
    """One readout of an experiment: kept as a time series for trends, failures included."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCESS = "success", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        API = "api", "API"
        ADMIN = "admin", "Admin"
        STOP = "stop", "Experiment stopped"
        COMMAND = "command", "Command"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="snapshots")
    phase = models.ForeignKey(Phase, on_delete=models.SET_NULL, null=True, blank=True, related_name="snapshots")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    requested_by = models.CharField(max_length=150, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    analysis_end = models.DateTimeField(null=True, blank=True)
    rollup_mode = models.CharField(max_length=12, blank=True, default="")
    error_code = models.CharField(max_length=60, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # When the broker took the task (null: queued but not sent yet, say while the broker was down).
    sent_at = models.DateTimeField(null=True, blank=True)
    # A running readout's last sign of life, and until when it holds its lease.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    units = models.BigIntegerField(null=True, blank=True)
    multiple_exposure_units = models.BigIntegerField(null=True, blank=True)
    multiple_exposure_share = models.FloatField(null=True, blank=True)
    srm_p_value = models.FloatField("SRM p-value", null=True, blank=True)
    srm_warning = models.BooleanField("SRM warning", default=False)
    guardrail_status = models.CharField(max_length=10, blank=True, default="")
    # The shape of the readout document in the columns below (`experiments.readout`); null for
    # runs without results and for readouts stored before the version was kept (told apart by shape).
    schema_version = models.PositiveSmallIntegerField(null=True, blank=True)
    # Per variation: units; per metric: fixed, CUPED and sequential comparisons; slices; inputs.
    variations = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=list, blank=True)
    slices = models.JSONField(default=list, blank=True)
    inputs = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["experiment", "-created_at"], name="snapshot_experiment_created"),
            # The sweep's look at readouts waiting or in progress, among all the finished ones.
            models.Index(fields=["status"], name="snapshot_unfinished",
                         condition=models.Q(status__in=["queued", "running"])),
        ]

    def __str__(self) -> str:
        return f"{self.experiment.key} readout {self.pk} ({self.status})"



# Holdout readouts live in their own module; imported here so that Django registers them.
from experiments.growth_models import NorthStar as NorthStar  # noqa: E402
from experiments.holdout_models import HoldoutAnalysis as HoldoutAnalysis  # noqa: E402
from experiments.holdout_models import HoldoutMetric as HoldoutMetric  # noqa: E402
from experiments.holdout_models import HoldoutSnapshot as HoldoutSnapshot  # noqa: E402
