"""Celery tasks of the notifications app, by stable name. Both are idempotent: a delivery is claimed by
compare-and-set before it is posted, and the sweep only re-queues rows."""
from celery import shared_task

from notifications import services


@shared_task(name="notifications.deliver", acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> str:
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="notifications.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    return services.deliveries_sweep()
