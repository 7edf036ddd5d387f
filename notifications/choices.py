"""Notification events and delivery statuses (a state machine like the release's)."""
from django.db import models


class EventType(models.TextChoices):
    APPROVAL_NEEDED = "approval_needed", "Approval needed"
    PROMOTED = "promoted", "Promoted"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    ROLLED_BACK = "rolled_back", "Rolled back"
    BLOCKED = "blocked", "Blocked"
    MANUAL_REVIEW = "manual_review", "Manual review needed"
    FREEZE_STARTED = "freeze_started", "Freeze started"
    FREEZE_ENDED = "freeze_ended", "Freeze ended"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its (next) attempt
    SENDING = "sending", "Sending"  # claimed by a worker
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"  # every attempt failed, or the receiver refused it as such


D = DeliveryStatus
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    D.PENDING: frozenset({D.SENDING}),
    D.SENDING: frozenset({D.DELIVERED, D.PENDING, D.FAILED}),
    D.DELIVERED: frozenset(),
    D.FAILED: frozenset({D.PENDING}),  # "send again" by a person on the page
}
TERMINAL_STATUSES = frozenset(s for s, nxt in ALLOWED_TRANSITIONS.items() if not nxt)
