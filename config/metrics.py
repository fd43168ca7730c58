"""The service's Prometheus metrics: defined once here, incremented where things happen.

Under gunicorn every worker process writes its samples to files in `PROMETHEUS_MULTIPROC_DIR`
(the client library's multiprocess mode; `config/gunicorn.py` sets the directory up and clears
it at start), and `/metrics` (`config.metrics_view`) adds up the files of every worker. Without
that variable (the development server, tests) the process's own registry is read.

Label values are bounded: routes are URL patterns (never raw paths), reasons and outcomes come
from fixed vocabularies, environments and experiments are configuration.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "EVALUATIONS",
    "EVENTS",
    "EXPOSURES",
    "OPEN_STREAMS",
    "RATE_LIMITED",
    "REQUESTS",
    "REQUEST_SECONDS",
    "SNAPSHOT_COMPILE_FAILURES",
    "STREAM_FANOUT_SECONDS",
    "STREAM_MESSAGES",
    "STREAM_REFUSED",
]

REQUESTS = Counter(
    "splitbase_http_requests", "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "splitbase_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern.", ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EVALUATIONS = Counter(
    "splitbase_evaluations", "Flags evaluated for SDKs, by endpoint and evaluation reason.", ["endpoint", "reason"],
)
EXPOSURES = Counter(
    "splitbase_exposures",
    "Served exposures by outcome: buffered (queued in a worker), written (stored), spooled (kept on "
    "disk while the database is unreachable), rejected (refused by the database, set aside).",
    ["outcome"],
)
SNAPSHOT_COMPILE_FAILURES = Counter(
    "splitbase_snapshot_compile_failures", "Configurations that failed to compile (the last good one is served).",
    ["environment"],
)
RATE_LIMITED = Counter(
    "splitbase_rate_limited_requests", "SDK requests refused with 429 by the rate limits, by endpoint.", ["endpoint"],
)
EVENTS = Counter(
    "splitbase_events", "Items posted to the events API, by outcome (accepted, duplicate, rejected) and error code.",
    ["outcome", "code"],
)
OPEN_STREAMS = Gauge(
    "splitbase_open_streams", "Streaming connections open to SDKs.", multiprocess_mode="livesum",
)
STREAM_MESSAGES = Counter(
    "splitbase_stream_messages", "Configuration messages sent on streams, by protocol (growthbook, ofrep).",
    ["protocol"],
)
STREAM_REFUSED = Counter(
    "splitbase_stream_refused", "Stream connections refused, by HTTP status (401, 403, 429, 503).", ["status"],
)
STREAM_FANOUT_SECONDS = Histogram(
    "splitbase_stream_fanout_seconds",
    "Time the streaming process takes to hand a new configuration to every open stream of its environment.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
