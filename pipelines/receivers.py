"""React to release transitions (sent on commit): a new release starts its pipeline.

The receiver is quick (it enqueues) and never raises: the release change is already committed. What happens on
promotion (the rollout) belongs to the deploy app.
"""
import logging

from django.dispatch import receiver

from pipelines import services
from releases.choices import ReleaseStatus
from releases.signals import release_transitioned

log = logging.getLogger(__name__)


@receiver(release_transitioned, dispatch_uid="pipelines.on_release_transitioned")
def on_release_transitioned(sender, *, release_id, from_status, to_status, **kwargs):
    if from_status != "" or to_status != ReleaseStatus.PENDING:
        return
    try:
        services.pipeline_start(release_id=release_id)
    except Exception:
        log.exception("pipelines: starting the pipeline of release #%s failed", release_id)
