"""Guarded rollouts on the worker: Celery beat runs the check every GUARDED_CHECK_SECONDS."""

from celery import shared_task

from guarded.services import guarded_rollouts_check


@shared_task(ignore_result=True)
def guarded_rollouts_check_task() -> dict[int, str]:
    return guarded_rollouts_check().outcomes
