"""Celery task of the scheduled change requests (`base.change_requests`); safe to run twice: each
change request is applied in its own transaction with its row locked, and only while approved."""

from __future__ import annotations

from celery import shared_task
from django.db import close_old_connections, connection

from base.change_requests import change_requests_apply_due


@shared_task
def change_requests_apply_due_task() -> dict[str, int]:
    if not connection.in_atomic_block:
        close_old_connections()
    return change_requests_apply_due()
