"""Celery application: tasks are discovered in the Django apps, settings prefixed CELERY_."""

import os

from celery import Celery
from celery.signals import worker_process_init

from config.tracing import tracing_configure

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("splitbase")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect(weak=False)
def _trace_worker(**_: object) -> None:
    tracing_configure(celery=True)  # only with OTEL_ENABLED=true
