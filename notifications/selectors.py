"""Reads of the notifications app, restricted per user like every list (deny by default)."""
from django.db.models import QuerySet

from notifications.models import Delivery, Subscription
from releases import policy


def subscription_list(*, user) -> QuerySet:
    if not policy.can(user, policy.AUDIT_VIEW) and not policy.can(user, policy.WEBHOOK_MANAGE):
        return Subscription.objects.none()
    return Subscription.objects.all()


def delivery_list(*, user, status: str = "", event: str = "", subscription: str = "",
                  release_id: int | None = None) -> QuerySet:
    if not policy.can(user, policy.AUDIT_VIEW) and not policy.can(user, policy.WEBHOOK_MANAGE):
        return Delivery.objects.none()
    deliveries = Delivery.objects.all()
    if status:
        deliveries = deliveries.filter(status=status)
    if event:
        deliveries = deliveries.filter(event=event)
    if subscription:
        deliveries = deliveries.filter(subscription_name=subscription)
    if release_id:
        deliveries = deliveries.filter(release_id=release_id)
    return deliveries.order_by("-created_at", "-id")
