"""The one way in: every audit row is offered to notifications inside the transaction that writes it."""
import logging

from django.db import transaction
from django.dispatch import receiver

from notifications import services
from releases.signals import audit_recorded

log = logging.getLogger(__name__)


@receiver(audit_recorded, dispatch_uid="notifications.audit_recorded")
def on_audit_recorded(sender, audit, **kwargs):
    if audit.object_type not in ("release",) and audit.action != "sla.manual_review":
        return  # most rows (logins, settings) announce nothing: no query
    try:
        with transaction.atomic():  # a savepoint: a failure here must not abort the release's own transaction
            services.audit_notify(audit=audit)
    except Exception:  # noqa: BLE001 - a notification must never undo or block a release transition
        log.exception("notifications: could not queue deliveries for audit row %s", audit.pk)
