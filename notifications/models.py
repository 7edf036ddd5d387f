from django.conf import settings
from django.db import models

from notifications.channels import Channel
from notifications.choices import DeliveryStatus, EventType
from releases.redaction import mask_url
from releases.sealed import SealedTextField

CHANNEL_CHOICES = [(c.value, label) for c, label in [
    (Channel.SLACK, "Slack"), (Channel.FEISHU, "Feishu / Lark"), (Channel.DINGTALK, "DingTalk"),
    (Channel.WECOM, "WeCom"), (Channel.GENERIC, "Generic webhook (JSON, HMAC-signed)")]]


class Subscription(models.Model):
    """Who hears about what: one webhook, the events it wants, in the environments it cares about."""

    name = models.CharField(max_length=100, unique=True)
    channel = models.CharField(max_length=20, choices=CHANNEL_CHOICES)
    # The URL may hold a token (DingTalk access_token, WeCom key, Slack path): sealed, only masked_url is shown.
    url = SealedTextField()
    signing_secret = SealedTextField(blank=True)
    events = models.JSONField(default=list, help_text="event types (EventType values); at least one")
    environments = models.JSONField(default=list, blank=True, help_text="environment names; empty: every one")
    # Approval-needed messages go only to subscriptions of the roles whose approval is missing (empty: any).
    roles = models.JSONField(default=list, blank=True)
    # The language its messages are written in (settings.LANGUAGES): a Feishu room of a Chinese team reads Chinese.
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default="en")
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)


class Delivery(models.Model):
    """One event to one subscription. `key` (event key / subscription) is unique: the same event is never queued
    twice for the same subscription, and a worker claims the row before it posts. The row is the queue."""

    key = models.CharField(max_length=200, unique=True)
    # No database constraint: deleting a subscription must not wait on (or deadlock with) the audit writer that is
    # inserting a delivery for it; the name is kept for the page.
    subscription = models.ForeignKey(Subscription, null=True, on_delete=models.SET_NULL, db_constraint=False,
                                     related_name="deliveries")
    subscription_name = models.CharField(max_length=100)
    channel = models.CharField(max_length=20, choices=CHANNEL_CHOICES)
    event = models.CharField(max_length=30, choices=EventType.choices)
    event_key = models.CharField(max_length=120)
    environment = models.CharField(max_length=30, blank=True)
    release_id = models.BigIntegerField(null=True, blank=True)
    message = models.JSONField(help_text="channels.Message fields, redacted")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notif_delivery_due")]

    @property
    def title(self) -> str:
        return self.message.get("title", "")


class FreezeState(models.Model):
    """What the freeze sweeper last saw for an environment, so each start and end is announced once."""

    environment = models.CharField(max_length=30, unique=True)
    window_key = models.CharField(max_length=200, blank=True, help_text="the active window's key; blank: no freeze")
    changed_at = models.DateTimeField()


def public_url(path: str) -> str:
    return settings.ROLLGATE_PUBLIC_URL.rstrip("/") + path
