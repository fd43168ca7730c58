"""What the experiments side reports when `/metrics` is scraped (`config.metrics_http` runs
these): readouts of running experiments, read from their stored snapshots so that every
process and replica reports the same figures, and the length of the readout task queue."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db.models import Count, Q
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from experiments.models import Experiment, ResultSnapshot

__all__ = ["QueueCollector", "ReadoutCollector"]

logger = logging.getLogger(__name__)
QUEUE_TIMEOUT_SECONDS = 0.5


class ReadoutCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        duration = GaugeMetricFamily("splitbase_readout_last_duration_seconds",
                                     "Duration of the last successful readout, by running experiment.",
                                     labels=["experiment"])
        failures = CounterMetricFamily("splitbase_readout_failures",
                                       "Failed readouts, by running experiment.", labels=["experiment"])
        running = Experiment.objects.filter(status=Experiment.Status.RUNNING)
        rows = running.annotate(
            failed=Count("snapshots", filter=Q(snapshots__status=ResultSnapshot.Status.FAILED)),
        ).values_list("key", "failed")
        lasts = dict(
            ResultSnapshot.objects.filter(experiment__in=running, status=ResultSnapshot.Status.SUCCESS)
            .order_by("experiment_id", "-finished_at").distinct("experiment_id")
            .values_list("experiment__key", "duration_ms")
        )
        for key, failed in rows:
            failures.add_metric([key], failed)
            last_ms = lasts.get(key)
            if last_ms is not None:
                duration.add_metric([key], last_ms / 1000)
        yield duration
        yield failures


class QueueCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        queue = str(settings.CELERY_TASK_DEFAULT_QUEUE)
        length = GaugeMetricFamily("splitbase_celery_queue_length", "Tasks waiting in the broker's queue.",
                                   labels=["queue"])
        url = str(settings.CELERY_BROKER_URL)
        if url.startswith(("redis://", "rediss://")):
            try:
                client = redis.Redis.from_url(url, socket_timeout=QUEUE_TIMEOUT_SECONDS,
                                              socket_connect_timeout=QUEUE_TIMEOUT_SECONDS)
                length.add_metric([queue], float(client.llen(queue)))
            except redis.RedisError as exc:
                logger.warning("Could not read the length of queue %s: %s", queue, exc)
        yield length
