"""Liveness and readiness probes.

`/readyz` answers within a few seconds whatever the database does: its check runs on a thread
of its own with a deadline, so a silent network makes it say "timeout" instead of hanging.
"""

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.http import HttpRequest, JsonResponse

from serving.ratelimit import limiter

DATABASE_CHECK_SECONDS = 2.0
# One thread: while a check hangs on a silent network, the next ones queue and time out too.
_database_checks = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-database")


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _select_one() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any driver error means "not ready"
        return False, type(exc).__name__


def _select_one_on_own_thread() -> tuple[bool, str]:
    close_old_connections()
    ok, detail = _select_one()
    if not ok:
        connection.close()
    return ok, detail


def _database_ok() -> tuple[bool, str]:
    if settings.SNAPSHOT_REFRESH == "inline":
        return _select_one()  # tests: the check runs on the test's own connection
    try:
        return _database_checks.submit(_select_one_on_own_thread).result(timeout=DATABASE_CHECK_SECONDS)
    except FutureTimeout:
        return False, "timeout"


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
    # Informational: without Redis the limits fail open, which does not make the service unready.
    checks["rate_limits"] = limiter.status(probe=True)
    ready = db_ok and broker_ok and evaluation_ok
    body = {"status": "ready" if ready else "degraded", "checks": checks, "evaluation": evaluation}
    return JsonResponse(body, status=200 if ready else 503)
