"""OpenTelemetry tracing (the otel extra): a request traced with its SQL statements, in a process
of its own so the instrumentation does not leak into other tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from config.tracing import tracing_configure

PROJECT = Path(__file__).resolve().parents[3]

SCRIPT = """
import json, os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from config.tracing import tracing_configure
exporter = InMemorySpanExporter()
assert tracing_configure(exporter=exporter)
django.setup()
from django.test import Client
response = Client(HTTP_HOST="localhost").get("/readyz")
print(json.dumps({"status": response.status_code,
                  "spans": [[s.name, dict(s.attributes or {})] for s in exporter.get_finished_spans()]},
                 default=str))
"""


def test_tracing__off_by_default() -> None:
    assert os.environ.get("OTEL_ENABLED") is None
    assert tracing_configure() is False


@pytest.mark.django_db
def test_tracing__request_and_sql_spans() -> None:
    db = connection.settings_dict
    host = quote(str(db["HOST"] or "127.0.0.1"), safe="")  # a Unix socket directory is percent-encoded
    url = f"postgres://{db['USER']}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "OTEL_ENABLED": "true", "DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    names = [name for name, _ in result["spans"]]
    assert any(name.startswith("GET") for name in names), names
    assert result["status"] == 200, result
    assert any(attributes.get("db.system") == "postgresql" for _, attributes in result["spans"]), result["spans"]
