"""Environments, the roles granted in each, and management tokens: the rows every other app
refers to.

The tables keep the names they were created with (`flags_environment`, `flags_apitoken`).
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from base.keys import KEY_PATTERN

KEY_VALIDATOR = RegexValidator(KEY_PATTERN, "Use only letters, digits, dots, underscores and hyphens.")


class Environment(models.Model):
    """A deployment stage with its own flag state, SDK keys and config version."""

    key = models.CharField(max_length=64, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=120)
    client_key = models.CharField(max_length=64, unique=True)
    server_key = models.CharField(max_length=64, unique=True)
    config_version = models.BigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "flags_environment"
        ordering = ["key"]
        permissions = [("publish_environment", "Can approve and apply reviewed changes in every environment")]

    def __str__(self) -> str:
        return self.key


class ApiToken(models.Model):
    """A management API token; only its SHA-256 is stored."""

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Read and write"

    name = models.CharField(max_length=120)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Empty: the owner's rights in every environment. Otherwise only in these environments.
    environments = models.ManyToManyField(Environment, blank=True, related_name="+")

    class Meta:
        db_table = "flags_apitoken"
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class EnvironmentRole(models.Model):
    """A user's role in one environment; it replaces their general rights there (see
    `base.permissions`)."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        EDITOR = "editor", "Editor"
        PUBLISHER = "publisher", "Publisher"
        ADMIN = "admin", "Admin"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="environment_roles")
    role = models.CharField(max_length=16, choices=Role.choices)
    granted_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment__key", "user__username"]
        constraints = [models.UniqueConstraint(fields=["environment", "user"], name="one_role_per_environment")]
        verbose_name = "environment role"

    def __str__(self) -> str:
        return f"{self.user} is {self.role} in {self.environment}"

    @property
    def environment_key(self) -> str:
        """Grants are audited as changes of their environment."""
        return self.environment.key
