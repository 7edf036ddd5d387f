"""React to release changes: every status or weight change of a release may change a routing table."""
import logging

from django.dispatch import receiver

from releases.signals import release_transitioned
from routing import services

log = logging.getLogger(__name__)


@receiver(release_transitioned, dispatch_uid="routing.release_transitioned")
def on_release_transitioned(sender, *, release_id, from_status, to_status, **kwargs):
    if from_status == "" and to_status == "pending":
        return  # a new release changes no table until it is promoted
    try:
        services.routing_release_changed(release_id=release_id)
    except Exception:  # the release change is committed; long-polls still re-check periodically
        log.exception("routing table revision for release %s not bumped", release_id)
