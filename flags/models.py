"""Configuration rows for environments, flags, rules and segments.

Rows hold configuration only: no side effects in save(); the services write them and the
mappers compile them into the pure snapshot that evaluation reads.
"""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from base.models import KEY_VALIDATOR, Environment


class Segment(models.Model):
    """A saved group: either a reusable condition or a list of ids of one attribute."""

    class Kind(models.TextChoices):
        CONDITION = "condition", "Condition"
        IDS = "ids", "List of ids"

    key = models.CharField(max_length=100, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CONDITION)
    condition = models.JSONField(default=dict, blank=True)
    attribute = models.CharField(max_length=100, default="id", blank=True)
    ids = models.JSONField(default=list, blank=True)
    # A private segment's ids and condition values reach client keys only as salted hashes
    # (or not at all), as the environment's client payload setting decides.
    private = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class AttributeDefinition(models.Model):
    """A context attribute the applications send, with its type and optional allowed values:
    what the condition builder offers. Definitions guide people; they change nothing served."""

    class Type(models.TextChoices):
        STRING = "string", "String"
        NUMBER = "number", "Number"
        BOOLEAN = "boolean", "Boolean"
        SEMVER = "semver", "Version (semver)"
        LIST = "list", "List"

    name = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.STRING)
    allowed_values = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "attribute"

    def __str__(self) -> str:
        return self.name


class Flag(models.Model):
    class ValueType(models.TextChoices):
        BOOLEAN = "boolean", "Boolean"
        STRING = "string", "String"
        NUMBER = "number", "Number"
        JSON = "json", "JSON"

    class Lifecycle(models.TextChoices):
        TEMPORARY = "temporary", "Temporary"
        PERMANENT = "permanent", "Permanent"

    key = models.CharField(max_length=100, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    value_type = models.CharField(max_length=10, choices=ValueType.choices, default=ValueType.BOOLEAN)
    owner = models.CharField(max_length=150, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    # Free-form OpenFeature flag metadata: {key: string | number | boolean}, served by OFREP
    # beside the flag's own fields (``flags.engine.validation.check_metadata`` has the rules).
    metadata = models.JSONField(default=dict, blank=True)
    lifecycle = models.CharField(max_length=10, choices=Lifecycle.choices, default=Lifecycle.TEMPORARY)
    # Flag-level prerequisites: [{"flag": key, "condition": {"value": ...}}]; all must hold.
    prerequisites = models.JSONField(default=list, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Variant(models.Model):
    """A named value of a flag; rules and experiments refer to variants by key."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="variants")
    key = models.CharField(max_length=100, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=200, blank=True, default="")
    value = models.JSONField()
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["flag_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["flag", "key"], name="variant_unique_key")]

    def __str__(self) -> str:
        return f"{self.flag.key}:{self.key}"


class FlagState(models.Model):
    """A flag in one environment: kill switch, served variants and ordered rules."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="states")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="flag_states")
    enabled = models.BooleanField(default=False)
    default_variant = models.CharField(max_length=100)
    off_variant = models.CharField(max_length=100)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flag", "environment"], name="flagstate_unique")]

    def __str__(self) -> str:
        return f"{self.flag.key}@{self.environment.key}"


class Rule(models.Model):
    class Kind(models.TextChoices):
        FORCE = "force", "Serve a variant"
        ROLLOUT = "rollout", "Percentage rollout"
        EXPERIMENT = "experiment", "Experiment split"

    state = models.ForeignKey(FlagState, on_delete=models.CASCADE, related_name="rules")
    uid = models.CharField(max_length=40, unique=True)
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.FORCE)
    description = models.CharField(max_length=300, blank=True, default="")
    enabled = models.BooleanField(default=True)
    condition = models.JSONField(default=dict, blank=True)
    segments = models.JSONField(default=list, blank=True)
    # Rule-level prerequisites: [{"flag": key, "condition": {"value": ...}}].
    prerequisites = models.JSONField(default=list, blank=True)
    variant = models.CharField(max_length=100, blank=True, default="")
    coverage = models.FloatField(
        default=1.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    hash_attribute = models.CharField(max_length=100, default="id")
    fallback_attribute = models.CharField(max_length=100, blank=True, default="")
    seed = models.CharField(max_length=100, blank=True, default="")
    # Experiment split: variant keys and their weights, in order.
    variations = models.JSONField(default=list, blank=True)
    weights = models.JSONField(default=list, blank=True)
    experiment_key = models.CharField(max_length=100, blank=True, default="")
    # GrowthBook namespace [layer key, start, end): the layer range the experiment owns.
    namespace = models.JSONField(null=True, blank=True)
    # Key of a traffic.Holdout: units in its share never enter this experiment rule.
    holdout = models.CharField(max_length=64, blank=True, default="")
    # Experiment split: variant keys whose units are counted (an exposure is recorded) and then
    # fall through to the next rules, as GrowthBook's passthrough variations do.
    passthrough = models.JSONField(default=list, blank=True)
    phase = models.CharField(max_length=20, blank=True, default="")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["state_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.kind} rule {self.uid}"



class FlagUsage(models.Model):
    """When a flag was last evaluated by the server in one environment (REST evaluate, OFREP,
    exposures sent to the events API). Written in batches by ``serving.usage``, never per request."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="usage")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="flag_usage")
    last_evaluated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flag", "environment"], name="flagusage_unique")]

    def __str__(self) -> str:
        return f"{self.flag_id}@{self.environment_id}: {self.last_evaluated_at}"


class EnvironmentUsage(models.Model):
    """When an SDK last fetched the environment's GrowthBook payload. SDKs evaluate it locally,
    so this says the environment is in use, not which flags are."""

    environment = models.OneToOneField(
        Environment, on_delete=models.CASCADE, primary_key=True, related_name="usage"
    )
    payload_fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.environment_id}: {self.payload_fetched_at}"
