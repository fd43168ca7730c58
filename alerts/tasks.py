"""Webhook delivery on the worker: every few seconds (Celery beat), new audit entries become
deliveries and the due ones are sent."""

from celery import shared_task

from alerts.services import deliveries_send, webhooks_dispatch


@shared_task(ignore_result=True)
def webhooks_deliver_task() -> int:
    webhooks_dispatch()
    return deliveries_send()
