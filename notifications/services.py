"""Writes of the notifications app: subscriptions (ops), deliveries (created with the audit row that announces
their event, claimed by compare-and-set, retried with backoff), and the freeze-window sweeper.

Delivery lifecycle (choices.ALLOWED_TRANSITIONS): pending -> sending (a worker's claim, attempt += 1) ->
delivered | pending (retry at next_attempt_at) | failed. The network call happens with no transaction open.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from notifications import channels
from notifications.choices import ALLOWED_TRANSITIONS, DeliveryStatus as D, EventType
from notifications.events import Event, approval_step_event, audit_event, freeze_event
from notifications.models import Delivery, FreezeState, Subscription
from releases.errors import InvalidInput, NotFound, TransitionNotAllowed
from releases.freeze import active_freeze
from releases.models import Environment, Release
from releases.policy import WEBHOOK_MANAGE
from releases.selectors import approval_summary
from releases.services import Actor, audit_record, require_permission

log = logging.getLogger(__name__)
DELIVER_TASK = "notifications.deliver"


def _enqueue_on_commit(delivery_ids: list[int], countdown: float | None = None) -> None:
    def send() -> None:
        task = current_app.tasks[DELIVER_TASK]
        for delivery_id in delivery_ids:
            task.apply_async(args=[delivery_id], countdown=countdown)

    if delivery_ids:
        transaction.on_commit(send)


# --- subscriptions -------------------------------------------------------------------------------------------

SUBSCRIPTION_FIELDS = ("name", "channel", "url", "signing_secret", "events", "environments", "roles", "language",
                       "enabled")


def _check_subscription(subscription: Subscription) -> None:
    if subscription.signing_secret and subscription.channel not in channels.SIGNED_CHANNELS:
        raise InvalidInput(
            gettext("%(channel)s webhooks are not signed (the URL is the secret): leave signing_secret "
                    "empty; signed channels: %(signed_channels)s") % {
                "channel": subscription.channel, "signed_channels": ", ".join(sorted(channels.SIGNED_CHANNELS))},
            field="signing_secret")
    unknown = sorted(set(subscription.environments) - set(Environment.objects.values_list("name", flat=True)))
    if unknown:
        raise InvalidInput(gettext("no environment named %(unknown)s") % {
                               "unknown": ', '.join(unknown)}, field="environments")


def _audit_view(subscription: Subscription) -> dict:
    """What the audit row may say: never the URL or the secret."""
    return {"channel": subscription.channel, "url": subscription.masked_url, "events": subscription.events,
            "environments": subscription.environments, "roles": subscription.roles, "language": subscription.language,
            "enabled": subscription.enabled, "signing_secret_set": bool(subscription.signing_secret)}


def subscription_create(*, actor: Actor, name: str, channel: str, url: str, events: list[str],
                        environments: list[str] | None = None, roles: list[str] | None = None,
                        signing_secret: str = "", language: str = "en", enabled: bool = True) -> Subscription:
    require_permission(actor, WEBHOOK_MANAGE)
    with transaction.atomic():
        if Subscription.objects.filter(name=name).exists():
            raise TransitionNotAllowed(gettext("a subscription named '%(name)s' already exists") % {
                                           "name": name}, field="name")
        subscription = Subscription(name=name, channel=channel, url=url, signing_secret=signing_secret,
                                    events=sorted(set(events)), environments=sorted(set(environments or [])),
                                    roles=sorted(set(roles or [])), language=language, enabled=enabled,
                                    created_by=actor.name)
        _check_subscription(subscription)
        subscription.save()
        audit_record(actor=actor, action="notification.subscription.create", object_type="subscription",
                     object_id=subscription.pk, to_state="enabled" if enabled else "disabled",
                     reason=f"subscription '{name}'", details=_audit_view(subscription))
    return subscription


def subscription_update(*, actor: Actor, subscription_id: int, **changes) -> Subscription:
    require_permission(actor, WEBHOOK_MANAGE)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().filter(pk=subscription_id).first()
        if subscription is None:
            raise NotFound(gettext("no subscription with id %(subscription_id)s") % {
                               "subscription_id": subscription_id})
        for name, value in changes.items():
            if name not in SUBSCRIPTION_FIELDS:
                raise InvalidInput(gettext("%(name)s cannot be changed") % {"name": name}, field=name)
            if name in ("events", "environments", "roles"):
                value = sorted(set(value))
            setattr(subscription, name, value)
        if "name" in changes and Subscription.objects.filter(name=subscription.name).exclude(pk=subscription.pk) \
                .exists():
            raise TransitionNotAllowed(gettext("a subscription named '%(subscription)s' already exists") % {
                                           "subscription": subscription.name}, field="name")
        _check_subscription(subscription)
        subscription.save()
        audit_record(actor=actor, action="notification.subscription.update", object_type="subscription",
                     object_id=subscription.pk, reason=f"subscription '{subscription.name}': "
                     + ", ".join(sorted(changes)), details=_audit_view(subscription))
    return subscription


def subscription_delete(*, actor: Actor, subscription_id: int) -> None:
    require_permission(actor, WEBHOOK_MANAGE)
    with transaction.atomic():
        subscription = Subscription.objects.filter(pk=subscription_id).first()
        if subscription is None:
            raise NotFound(gettext("no subscription with id %(subscription_id)s") % {
                               "subscription_id": subscription_id})
        details = _audit_view(subscription)
        subscription.delete()  # its deliveries stay, with the subscription's name, for the page
        audit_record(actor=actor, action="notification.subscription.delete", object_type="subscription",
                     object_id=subscription_id, reason=f"subscription '{subscription.name}'", details=details)


# --- events -> deliveries ------------------------------------------------------------------------------------


def _matching(event: Event) -> list[Subscription]:
    found = []
    for subscription in Subscription.objects.filter(enabled=True):
        if event.type not in subscription.events:
            continue
        if subscription.environments and event.environment not in subscription.environments:
            continue
        if (event.type == EventType.APPROVAL_NEEDED and subscription.roles
                and not set(subscription.roles) & set(event.audience_roles)):
            continue
        found.append(subscription)
    return found


def event_publish(*, event: Event) -> list[int]:
    """One pending delivery per matching subscription, in the caller's transaction, queued on commit. The key
    (event key / subscription) makes a second publication of the same event a no-op."""
    subscriptions = _matching(event)
    if not subscriptions:
        return []
    now = timezone.now()
    composed: dict[str, dict] = {}  # one message per language the subscriptions speak
    for subscription in subscriptions:
        if subscription.language not in composed:
            message = event.message(subscription.language)
            composed[subscription.language] = {
                "event": message.event, "title": message.title, "lines": list(message.lines), "link": message.link,
                "link_text": message.link_text, "data": message.data}
    rows = [Delivery(key=f"{event.key}/{s.pk}", subscription=s, subscription_name=s.name, channel=s.channel,
                     event=event.type, event_key=event.key, environment=event.environment,
                     release_id=event.release_id, message=composed[s.language], next_attempt_at=now, created_at=now)
            for s in subscriptions]
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    ids = list(Delivery.objects.filter(key__in=[r.key for r in rows], status=D.PENDING, attempts=0)
               .values_list("id", flat=True))
    _enqueue_on_commit(ids)
    return ids


def _missing_approvals(release) -> dict:
    return approval_summary(release).missing


def audit_notify(*, audit) -> list[int]:
    """Called with every audit row, inside the transaction that writes it (releases.signals.audit_recorded)."""
    event = audit_event(audit, missing_approvals=_missing_approvals)
    if event is None:
        return []
    return event_publish(event=event)


def approval_step_notify(*, release_id: int, step_weight: int, missing: dict, reason: str) -> list[int]:
    """releases.signals.approval_needed (after commit) for a gray step or stale approvals; step 0 (built, waiting)
    is announced from its audit row inside the transition's transaction (audit_notify)."""
    if not step_weight and not reason.startswith("approvals went stale"):
        return []
    release = Release.objects.select_related("service", "environment", "version").filter(pk=release_id).first()
    if release is None or not missing:
        return []
    with transaction.atomic():
        return event_publish(event=approval_step_event(release=release, step_weight=step_weight, missing=missing,
                                                       reason=reason))


# --- delivering ----------------------------------------------------------------------------------------------


def _move(delivery_id: int, *, from_status: str, to_status: str, **fields) -> bool:
    """Compare-and-set one status change (checked against the map); False: someone else moved it first."""
    assert to_status in ALLOWED_TRANSITIONS[from_status], f"{from_status} -> {to_status}"
    return bool(Delivery.objects.filter(pk=delivery_id, status=from_status).update(status=to_status, **fields))


def backoff_seconds(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: base · 2^(attempt-1), capped."""
    base = settings.ROLLGATE_NOTIFY_BACKOFF_SECONDS
    return min(settings.ROLLGATE_NOTIFY_BACKOFF_CAP_SECONDS, base * 2 ** max(0, attempt - 1))


def delivery_attempt(*, delivery_id: int) -> str:
    """Claim, post (no transaction open), record. Returns what happened: delivered, retry, failed, skipped."""
    now = timezone.now()
    delivery = Delivery.objects.filter(pk=delivery_id).select_related("subscription").first()
    if delivery is None or delivery.status != D.PENDING or delivery.next_attempt_at > now:
        return "skipped"
    attempt = delivery.attempts + 1
    if not Delivery.objects.filter(pk=delivery_id, status=D.PENDING, attempts=delivery.attempts).update(
            status=D.SENDING, attempts=attempt, claimed_at=now):
        return "skipped"  # another worker claimed it
    subscription = delivery.subscription
    if subscription is None or not subscription.enabled:
        _move(delivery_id, from_status=D.SENDING, to_status=D.FAILED,
              last_error="the subscription was deleted or disabled before delivery")
        return "failed"
    stored = delivery.message
    message = channels.Message(event=stored["event"], title=stored["title"], lines=tuple(stored["lines"]),
                               link=stored["link"], link_text=stored.get("link_text") or "Open in Rollgate",
                               data={**stored["data"], "delivery": delivery.key})
    request = channels.build_request(channel=delivery.channel, body=channels.payload(message, delivery.channel),
                                     secret=subscription.signing_secret, event=delivery.event,
                                     delivery_key=delivery.key)
    outcome = channels.post(url=subscription.url, channel=delivery.channel, request=request,
                            timeout_s=settings.ROLLGATE_NOTIFY_TIMEOUT_SECONDS)
    if outcome.delivered:
        _move(delivery_id, from_status=D.SENDING, to_status=D.DELIVERED, delivered_at=timezone.now(),
              last_status_code=outcome.status_code, last_error="")
        return "delivered"
    if outcome.retryable and attempt < settings.ROLLGATE_NOTIFY_MAX_ATTEMPTS:
        delay = backoff_seconds(attempt)
        with transaction.atomic():
            _move(delivery_id, from_status=D.SENDING, to_status=D.PENDING, last_status_code=outcome.status_code,
                  last_error=f"attempt {attempt}: {outcome.error}"[:500],
                  next_attempt_at=timezone.now() + timedelta(seconds=delay))
            _enqueue_on_commit([delivery_id], countdown=delay)
        return "retry"
    why = outcome.error if not outcome.retryable else f"{outcome.error} (gave up after {attempt} attempts)"
    _move(delivery_id, from_status=D.SENDING, to_status=D.FAILED, last_status_code=outcome.status_code,
          last_error=f"attempt {attempt}: {why}"[:500])
    return "failed"


def delivery_retry(*, actor: Actor, delivery_id: int) -> Delivery:
    """A person sends a failed delivery again (same key: receivers that dedupe by it see one message)."""
    require_permission(actor, WEBHOOK_MANAGE)
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound(gettext("no delivery with id %(delivery_id)s") % {"delivery_id": delivery_id})
        if delivery.status != D.FAILED:
            raise TransitionNotAllowed(gettext("delivery #%(delivery_id)s is %(status)s; only a failed "
                                               "one is sent again") % {
                                           "delivery_id": delivery_id, "status": delivery.status}, field="status")
        _move(delivery_id, from_status=D.FAILED, to_status=D.PENDING, next_attempt_at=timezone.now())
        audit_record(actor=actor, action="notification.delivery.retry", object_type="delivery",
                     object_id=delivery_id, from_state=D.FAILED, to_state=D.PENDING,
                     reason=f"{delivery.event} to '{delivery.subscription_name}' sent again")
        _enqueue_on_commit([delivery_id])
    delivery.refresh_from_db()
    return delivery


def deliveries_sweep() -> dict:
    """The row is the queue: re-drive deliveries whose message was lost (pending well past their time), and
    take back claims whose worker died (sending past the lease). Then look at freeze windows."""
    now = timezone.now()
    lease = timedelta(seconds=settings.ROLLGATE_NOTIFY_TIMEOUT_SECONDS * 4 + 60)
    stale = list(Delivery.objects.filter(status=D.SENDING, claimed_at__lt=now - lease).values_list("id", "attempts"))
    for delivery_id, attempts in stale:
        # The post may or may not have reached the receiver: retrying risks a duplicate (the delivery key lets a
        # receiver drop it), not retrying risks a lost message. A dead worker is rare; losing an alert is worse.
        Delivery.objects.filter(pk=delivery_id, status=D.SENDING, attempts=attempts).update(
            status=D.PENDING, next_attempt_at=now, last_error=f"attempt {attempts}: the worker stopped mid-send")
    overdue = list(Delivery.objects.filter(status=D.PENDING, next_attempt_at__lt=now - timedelta(seconds=30))
                   .values_list("id", flat=True)[:500])
    with transaction.atomic():
        _enqueue_on_commit(overdue)
    return {"reclaimed": len(stale), "requeued": len(overdue), **freeze_sweep(now=now)}


# --- freeze windows ------------------------------------------------------------------------------------------


def _window_key(window: dict | None) -> str:
    if not window:
        return ""
    text = "|".join(f"{k}={window[k]}" for k in sorted(window))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def freeze_sweep(*, now=None) -> dict:
    """Announce each freeze window's start and end once: compare-and-set on FreezeState per environment."""
    now = now or timezone.now()
    started = ended = 0
    for environment in Environment.objects.all():
        window = active_freeze(environment.freeze_windows or [], now)
        key = _window_key(window)
        state, created = FreezeState.objects.get_or_create(environment=environment.name,
                                                           defaults={"window_key": key, "changed_at": now})
        if created:
            if key:  # first look ever finds a freeze under way: announce it
                with transaction.atomic():
                    event_publish(event=freeze_event(environment=environment.name, window=window, started=True,
                                                     window_key=f"{key}-{int(now.timestamp())}"))
                started += 1
            continue
        if state.window_key == key:
            continue
        with transaction.atomic():
            if not FreezeState.objects.filter(pk=state.pk, window_key=state.window_key).update(
                    window_key=key, changed_at=now):
                continue  # another sweeper got there first
            if state.window_key:
                previous = _previous_window(environment, state.window_key)
                # keyed by the occurrence (when it started): a weekly window is announced every week
                event_publish(event=freeze_event(environment=environment.name, window=previous, started=False,
                                                 window_key=f"{state.window_key}-{int(state.changed_at.timestamp())}"))
                ended += 1
            if key:
                event_publish(event=freeze_event(environment=environment.name, window=window, started=True,
                                                 window_key=f"{key}-{int(now.timestamp())}"))
                started += 1
    return {"freeze_started": started, "freeze_ended": ended}


def _previous_window(environment: Environment, key: str) -> dict:
    for window in environment.freeze_windows or []:
        if _window_key(window) == key:
            return window
    return {"reason": "the window was removed from the environment's settings"}
