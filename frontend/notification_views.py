"""The notifications page: subscriptions (which events, which environments, which channel) and every delivery
with its attempts and last error; ops send a failed one again. Reads notifications.selectors, writes through
notifications.services."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from frontend.access import page_requires, refuse
from notifications import selectors, services
from notifications.choices import DeliveryStatus, EventType
from releases import policy
from releases.errors import DomainError
from releases.services import Actor

PAGE_SIZE = 100


@page_requires(policy.AUDIT_VIEW)
def notifications_page(request):
    status = request.GET.get("status", "")
    status = status if status in DeliveryStatus.values else ""
    event = request.GET.get("event", "")
    event = event if event in EventType.values else ""
    deliveries = selectors.delivery_list(user=request.user, status=status, event=event)[:PAGE_SIZE]
    return render(request, "frontend/notifications.html", {
        "subscriptions": selectors.subscription_list(user=request.user),
        "deliveries": deliveries, "status": status, "event": event,
        "statuses": DeliveryStatus.choices, "events": EventType.choices,
        "can_manage": bool(policy.can(request.user, policy.WEBHOOK_MANAGE)),
    })


@require_POST
@page_requires(policy.AUDIT_VIEW)
def delivery_retry(request, delivery_id: int):
    decision = policy.can(request.user, policy.WEBHOOK_MANAGE)
    if not decision:
        return refuse(request, decision.reason)
    try:
        delivery = services.delivery_retry(actor=Actor.of(request.user), delivery_id=delivery_id)
        messages.success(request, f"delivery #{delivery.pk} ({delivery.event} to {delivery.subscription_name}) "
                                  "queued again")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("notifications")
