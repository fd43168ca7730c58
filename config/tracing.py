"""OpenTelemetry tracing, an optional extra (`pip install 'splitbase[otel]'`), off by default.

With `OTEL_ENABLED=true` the web processes and the Celery worker trace requests (Django), SQL
statements (psycopg) and tasks (Celery) with the maintained instrumentations, and export spans
over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (the standard variable; default
`http://localhost:4318`). `OTEL_SERVICE_NAME` names the service (default `splitbase`). Without
the extra installed, enabling it stops the process with a clear message.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["tracing_configure", "tracing_enabled"]


def tracing_enabled() -> bool:
    return os.environ.get("OTEL_ENABLED", "").strip().lower() in ("1", "true", "yes", "on")


def tracing_configure(*, exporter: Any = None, celery: bool = False) -> bool:
    """Install the tracer provider and instrumentations when enabled (or when an `exporter` is
    given, e.g. an in-memory one); True when tracing is on."""
    if exporter is None and not tracing_enabled():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise RuntimeError("OTEL_ENABLED is set but the tracing extra is not installed: "
                           "pip install 'splitbase[otel]'") from exc
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                         "splitbase")}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False)
    if celery:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    return True
