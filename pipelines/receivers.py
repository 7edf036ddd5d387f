"""React to release transitions (sent on commit): start the pipeline, run or skip the deploy stage.

Receivers are quick (they enqueue) and never raise: the release change is already committed.
"""
import logging

from django.dispatch import receiver

from pipelines import services
from releases.choices import ReleaseStatus as R
from releases.signals import release_transitioned

log = logging.getLogger(__name__)


@receiver(release_transitioned, dispatch_uid="pipelines.on_release_transitioned")
def on_release_transitioned(sender, *, release_id, from_status, to_status, **kwargs):
    try:
        if from_status == "" and to_status == R.PENDING:
            services.pipeline_start(release_id=release_id)
        elif from_status == R.READY and to_status == R.DEPLOYING:
            services.pipeline_deploy(release_id=release_id)
        elif from_status == R.READY and to_status in (R.GRAY, R.LIVE):
            services.pipeline_deploy_skip(
                release_id=release_id, reason=f"promoted to {to_status} without a rollout (deploy target none)")
    except Exception:
        log.exception("pipelines: reacting to release #%s %s -> %s failed", release_id, from_status, to_status)
