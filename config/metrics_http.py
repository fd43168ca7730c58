"""HTTP side of the metrics: every request counted and timed (`RequestMetricsMiddleware`), and
`/metrics` in the Prometheus text format (`metrics_view`).

`/metrics` is for the monitoring system only: with `METRICS_TOKEN` set it needs
`Authorization: Bearer <token>`; otherwise it answers only clients whose address is in
`METRICS_ALLOWED_NETWORKS` (default: this host). Besides the counters of `config.metrics` it
runs the collectors named in `METRICS_COLLECTORS`, which read current figures when scraped
(readouts, the task queue, snapshot ages).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from config.metrics import REQUEST_SECONDS, REQUESTS

__all__ = ["RequestMetricsMiddleware", "exposition", "may_scrape", "metrics_view"]

logger = logging.getLogger(__name__)
UNMATCHED = "unmatched"


class RequestMetricsMiddleware:
    """Counts every answer by route pattern, method and status, and times it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Labelled children, looked up once each: `labels()` costs more than counting.
        self.counters: dict[tuple[str, str, int], Any] = {}
        self.timers: dict[str, Any] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = str(match.route) if match is not None and match.route else UNMATCHED
        method, status = request.method or "", response.status_code
        counter = self.counters.get((route, method, status))
        if counter is None:
            counter = self.counters[(route, method, status)] = REQUESTS.labels(route, method, str(status))
        counter.inc()
        timer = self.timers.get(route)
        if timer is None:
            timer = self.timers[route] = REQUEST_SECONDS.labels(route)
        timer.observe(time.perf_counter() - start)
        return response


def may_scrape(authorization: str, address: str) -> bool:
    """A scrape with this ``Authorization`` header from this address is allowed."""
    token = str(getattr(settings, "METRICS_TOKEN", "") or "")
    if token:
        return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_NETWORKS)


def exposition(collectors: Iterable[str] | None = None) -> bytes:
    """The counters of every worker (or of this process), then the collectors read now
    (``METRICS_COLLECTORS`` unless named)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counters = CollectorRegistry()
        multiprocess.MultiProcessCollector(counters)  # type: ignore[no-untyped-call]
    else:
        counters = REGISTRY
    current = CollectorRegistry()
    for path in settings.METRICS_COLLECTORS if collectors is None else collectors:
        current.register(import_string(path)())
    return bytes(generate_latest(counters)) + bytes(generate_latest(current))


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape(str(request.META.get("HTTP_AUTHORIZATION", "")), str(request.META.get("REMOTE_ADDR", ""))):
        return JsonResponse({"code": "permission_denied", "message": "Metrics are for the monitoring system only.",
                             "details": {}}, status=403)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
