"""Environments, the roles granted in each, and management tokens: the rows every other app
refers to.

The tables keep the names they were created with (`flags_environment`, `flags_apitoken`).
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from base.keys import KEY_PATTERN, new_attribute_salt, new_decryption_key

KEY_VALIDATOR = RegexValidator(KEY_PATTERN, "Use only letters, digits, dots, underscores and hyphens.")


class ClientPayload(models.TextChoices):
    FULL = "full", "Full rules"
    PRIVATE = "private", "Private segments hashed"
    ENCRYPTED = "encrypted", "Encrypted, private segments hashed"
    REMOTE = "remote", "Remote evaluation only"


class Environment(models.Model):
    """A deployment stage with its own flag state, SDK keys and config version."""

    key = models.CharField(max_length=64, unique=True, validators=[KEY_VALIDATOR])
    name = models.CharField(max_length=120)
    client_key = models.CharField(max_length=64, unique=True)
    server_key = models.CharField(max_length=64, unique=True)
    config_version = models.BigIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    # A reviewed environment serves a change only once another user approved it (`base.reviews`).
    requires_review = models.BooleanField(default=False)
    review_exempts_kill_switch = models.BooleanField(
        default=True, help_text="Turning a flag on or off applies at once, without review.")
    # What client keys receive (docs/security.md, Private payloads): the full payload, the
    # payload with secure attributes hashed, that payload encrypted, or remote evaluation only.
    client_payload = models.CharField(max_length=12, choices=ClientPayload.choices, default=ClientPayload.FULL)
    decryption_key = models.CharField(max_length=64, default=new_decryption_key)
    attribute_salt = models.CharField(max_length=64, default=new_attribute_salt)

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


class ChangeRequest(models.Model):
    """A proposed change of what an environment serves: the service call to make (`operation` and
    `payload`), what it changes (`changes`: each object's diff against the live revision), and its
    review. Also a change scheduled for later (`apply_at`) where no review is required."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        APPROVED = "approved", "Approved (scheduled)"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected"
        CONFLICTING = "conflicting", "Conflicting"
        CANCELLED = "cancelled", "Cancelled"

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="change_requests")
    operation = models.CharField(max_length=64)
    summary = models.CharField(max_length=300)
    object_type = models.CharField(max_length=32)
    object_key = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    changes = models.JSONField(default=list)
    base_revision = models.CharField(max_length=64)
    comment = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    author_label = models.CharField(max_length=200)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    reviewer_label = models.CharField(max_length=200, blank=True)
    review_comment = models.TextField(blank=True)
    note = models.CharField(max_length=500, blank=True)
    apply_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "apply_at"], name="change_request_due"),
                   models.Index(fields=["environment", "status"], name="change_request_queue")]
        verbose_name = "change request"

    def __str__(self) -> str:
        return f"#{self.pk} {self.summary}"

    @property
    def environment_key(self) -> str:
        return self.environment.key
