"""gunicorn settings, read from the environment (docs/sdk.md explains each choice).

Evaluation is CPU-bound Python answered from an in-process snapshot, so the default is one
sync worker per core plus one (to cover a worker blocked on the database or a slow client),
no threads: a sync worker serves one request at a time with no GIL contention, which gave the
shortest tail latency on this workload, and is what gunicorn recommends behind a buffering
proxy. gthread workers (GUNICORN_WORKER_CLASS=gthread, GUNICORN_THREADS=2) keep connections
alive and served more requests from directly connected clients, with a longer tail
(docs/benchmarks.md, Serving). Workers are recycled to bound memory; the jitter keeps them
from restarting together.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
# Only used by the gthread class; sync workers handle one request at a time.
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# Keep-alive applies to gthread workers (sync workers close the connection after each response).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Connections the kernel queues while every worker is busy.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "5000"))
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
# Tokens and SDK keys in request lines are replaced by a fingerprint (config/logs.py).
logger_class = "config.logs.RedactingGunicornLogger"

# Prometheus multiprocess mode (config/metrics.py): every worker writes its samples to files in
# one directory, which /metrics adds up. A private directory per server unless set; emptied at
# start, and a worker's live gauges are dropped when it exits.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="splitbase-metrics-")


def on_starting(server: object) -> None:
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, mode=0o700, exist_ok=True)


def child_exit(server: object, worker: object) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(getattr(worker, "pid", 0))  # type: ignore[no-untyped-call]
