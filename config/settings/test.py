"""Test settings: the same as production except for a fixed key and fast hashing."""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
# Rate-limit counters of this test run (and of the servers it starts) under keys of its own.
os.environ.setdefault("RATE_LIMIT_KEY_PREFIX", f"splitbase-test-{os.getpid()}-{secrets.token_hex(4)}")

from config.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serving checks snapshot versions in the request: tests run inside a transaction that a
# background thread's connection would not see.
SNAPSHOT_REFRESH = "inline"
