"""The notifications page: subscriptions (which events, which environments, which channel) and every delivery
with its attempts and last error. Ops create, edit and delete subscriptions with the form on the page and send a
failed delivery again. Input is checked by the API's serializer (notifications.api.SubscriptionInput) and written
by notifications.services, so the page and the API refuse the same things with the same words."""
from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from frontend.access import page_requires, refuse
from notifications import selectors, services
from notifications.api import SubscriptionInput
from notifications.choices import DeliveryStatus, EventType
from notifications.models import CHANNEL_CHOICES
from releases import policy
from releases.choices import Role
from releases.errors import DomainError
from releases.models import Environment
from releases.services import Actor

PAGE_SIZE = 100


def _page(request, *, form: dict | None = None, status: int = 200):
    delivery_status = request.GET.get("status", "")
    delivery_status = delivery_status if delivery_status in DeliveryStatus.values else ""
    event = request.GET.get("event", "")
    event = event if event in EventType.values else ""
    deliveries = selectors.delivery_list(user=request.user, status=delivery_status, event=event)[:PAGE_SIZE]
    subscriptions = selectors.subscription_list(user=request.user)
    can_manage = bool(policy.can(request.user, policy.WEBHOOK_MANAGE))
    if form is None and can_manage:
        editing = subscriptions.filter(pk=request.GET.get("edit")).first() \
            if request.GET.get("edit", "").isdigit() else None
        form = _form_from(editing)
    return render(request, "frontend/notifications.html", {
        "subscriptions": subscriptions, "deliveries": deliveries, "status": delivery_status, "event": event,
        "statuses": DeliveryStatus.choices, "events": EventType.choices, "can_manage": can_manage,
        "managers": ", ".join(policy.roles_with(policy.WEBHOOK_MANAGE)), "form": form,
        "channels": CHANNEL_CHOICES, "roles": Role.choices, "languages": settings.LANGUAGES,
        "environment_names": list(Environment.objects.order_by("name").values_list("name", flat=True)),
    }, status=status)


def _form_from(subscription) -> dict:
    """The form's values: empty for a new subscription, the stored ones (never the URL or the secret) to edit."""
    if subscription is None:
        return {"id": None, "values": {"events": [], "environments": [], "roles": [], "language": "en",
                                       "enabled": True}, "errors": {}}
    values = {name: getattr(subscription, name) for name in
              ("name", "channel", "events", "environments", "roles", "language", "enabled")}
    return {"id": subscription.pk, "masked_url": subscription.masked_url,
            "secret_set": bool(subscription.signing_secret), "values": values, "errors": {}}


@page_requires(policy.AUDIT_VIEW)
def notifications_page(request):
    return _page(request)


def _submitted(post, *, editing: bool) -> dict:
    """The posted form as the API's JSON body. Editing: an empty URL or secret keeps the stored one (neither is ever
    shown again), "remove the signing secret" clears it."""
    data = {"name": post.get("name", "").strip(), "channel": post.get("channel", ""),
            "url": post.get("url", "").strip(), "signing_secret": post.get("signing_secret", ""),
            "events": post.getlist("events"), "environments": post.getlist("environments"),
            "roles": post.getlist("roles"), "language": post.get("language", "en"),
            "enabled": post.get("enabled") == "on"}
    if editing:
        if not data["url"]:
            del data["url"]
        if post.get("clear_signing_secret") == "on":
            data["signing_secret"] = ""
        elif not data["signing_secret"]:
            del data["signing_secret"]
    return data


def _words(errors) -> list[str]:
    """A serializer's errors for one field as sentences (a list field nests them by item: {1: ["..."]})."""
    if isinstance(errors, dict):
        return [text for nested in errors.values() for text in _words(nested)]
    if isinstance(errors, list):
        return [text for nested in errors for text in _words(nested)]
    return [str(errors)]


@require_POST
@page_requires(policy.AUDIT_VIEW)
def subscription_save(request, subscription_id: int | None = None):
    """Create (no id) or edit a subscription from the page form; errors are shown next to their field."""
    decision = policy.can(request.user, policy.WEBHOOK_MANAGE)
    if not decision:
        return refuse(request, decision.reason)
    subscription = None
    if subscription_id is not None:
        subscription = selectors.subscription_list(user=request.user).filter(pk=subscription_id).first()
        if subscription is None:
            return refuse(request, _("no subscription with id %(id)s") % {"id": subscription_id}, status=404)
    data = _submitted(request.POST, editing=subscription is not None)
    form = _form_from(subscription)
    form["values"] = {key: value for key, value in data.items() if key not in ("url", "signing_secret")}
    serializer = SubscriptionInput(data=data, partial=subscription is not None)
    if not serializer.is_valid():
        form["errors"] = {field: _words(errors) for field, errors in serializer.errors.items()}
        return _page(request, form=form, status=400)
    actor = Actor.of(request.user)
    try:
        if subscription is None:
            saved = services.subscription_create(actor=actor, **serializer.validated_data)
        else:
            changes = {key: value for key, value in serializer.validated_data.items() if key in data}
            saved = services.subscription_update(actor=actor, subscription_id=subscription.pk, **changes)
    except DomainError as error:
        form["errors"] = {error.field or "form": [error.message]}
        return _page(request, form=form, status=error.status_code)
    text = _("subscription '%(name)s' created") if subscription is None else _("subscription '%(name)s' saved")
    messages.success(request, text % {"name": saved.name})
    return redirect("notifications")


@require_POST
@page_requires(policy.AUDIT_VIEW)
def subscription_delete(request, subscription_id: int):
    decision = policy.can(request.user, policy.WEBHOOK_MANAGE)
    if not decision:
        return refuse(request, decision.reason)
    try:
        subscription = selectors.subscription_list(user=request.user).filter(pk=subscription_id).first()
        name = subscription.name if subscription else ""
        services.subscription_delete(actor=Actor.of(request.user), subscription_id=subscription_id)
        messages.success(request, _("subscription '%(name)s' deleted") % {"name": name})
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("notifications")


@require_POST
@page_requires(policy.AUDIT_VIEW)
def delivery_retry(request, delivery_id: int):
    decision = policy.can(request.user, policy.WEBHOOK_MANAGE)
    if not decision:
        return refuse(request, decision.reason)
    try:
        delivery = services.delivery_retry(actor=Actor.of(request.user), delivery_id=delivery_id)
        messages.success(request, _("delivery #%(id)s (%(event)s to %(subscription)s) queued again") % {
            "id": delivery.pk, "event": delivery.event, "subscription": delivery.subscription_name})
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("notifications")
