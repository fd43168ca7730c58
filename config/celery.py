"""Celery application: tasks are discovered in the Django apps, settings prefixed CELERY_."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("splitbase")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
