"""Liveness and readiness probes."""

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any driver error means "not ready"
        return False, type(exc).__name__


def _broker_ok() -> tuple[bool, str]:
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True, "ok"
    except Exception as exc:  # any transport error means "not ready"
        return False, type(exc).__name__


def _evaluation_ok() -> tuple[bool, Any]:
    """Degraded while this process answers SDKs from its last good snapshot (database down)."""
    from serving.snapshots import store

    store.refresh()
    status = store.status()
    return status["state"] == "ok", status


def readyz(request: HttpRequest) -> JsonResponse:
    db_ok, db_detail = _database_ok()
    broker_ok, broker_detail = _broker_ok()
    evaluation_ok, evaluation = _evaluation_ok()
    checks: dict[str, Any] = {"database": db_detail, "broker": broker_detail}
    ready = db_ok and broker_ok and evaluation_ok
    body = {"status": "ready" if ready else "degraded", "checks": checks, "evaluation": evaluation}
    return JsonResponse(body, status=200 if ready else 503)
