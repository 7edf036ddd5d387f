"""The one way in: every audit row is offered to notifications inside the transaction that writes it."""
import logging

from django.db import transaction
from django.dispatch import receiver

from notifications import services
from releases.signals import approval_needed, audit_recorded

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


@receiver(approval_needed, dispatch_uid="notifications.approval_needed")
def on_approval_needed(sender, release_id, step_weight, missing, reason, **kwargs):
    """Gray-step approvals and stale approvals (issue 15's signal, sent after commit)."""
    try:
        services.approval_step_notify(release_id=release_id, step_weight=step_weight, missing=missing, reason=reason)
    except Exception:  # noqa: BLE001 - the release has moved already; a notification must not raise into it
        log.exception("notifications: could not queue approval-needed deliveries for release %s", release_id)
