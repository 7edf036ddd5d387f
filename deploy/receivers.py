"""One receiver of release_transitioned for the deploy app, and the table it reads: each release transition that
changes what runs on a target maps to exactly one deploy task.

Environments whose deploy_target is "none" are skipped: Rollgate only records the decision there. The receiver is
quick (it creates a row or numbers a weight change, and queues on commit) and never raises: the release change is
already committed. Tasks are queued by their stable names (deploy/tasks.py), not imported.
"""
import logging
from dataclasses import dataclass

from django.dispatch import receiver

from deploy import rollouts
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import Release
from releases.signals import release_transitioned

log = logging.getLogger("rollgate.deploy")
S = ReleaseStatus


@dataclass(frozen=True)
class Route:
    from_statuses: frozenset[str]
    to_status: str
    task: str
    why: str


ROUTES: tuple[Route, ...] = (
    Route(frozenset({S.READY}), S.DEPLOYING, "deploy.rollout_run", "promoted: roll the version out"),
    Route(frozenset({S.DEPLOYING}), S.ROLLED_BACK, "deploy.rollout_cancel",
          "rolled back while deploying: cancel the rollout, remove its canary, leave the stable alone"),
    Route(frozenset({S.DEPLOYING, S.GRAY, S.PAUSED}), S.GRAY, "deploy.set_weight",
          "first traffic, or the next gray weight (only when the weight changed)"),
    Route(frozenset({S.DEPLOYING, S.GRAY, S.PAUSED}), S.LIVE, "deploy.go_live", "100 %: becomes the stable"),
    Route(frozenset({S.GRAY, S.PAUSED}), S.ROLLED_BACK, "deploy.roll_back", "canary cut: traffic back to stable"),
    Route(frozenset({S.GRAY, S.PAUSED}), S.BLOCKED, "deploy.roll_back",
          "blocked by the SLA gate while serving traffic: cut like a rollback"),
    Route(frozenset({S.LIVE}), S.ROLLED_BACK, "deploy.roll_back",
          "live release undone: the restored release runs again"),
)
# superseded -> live is a restore: the roll_back task of the release that replaced it moves the traffic.


def route_for(from_status: str, to_status: str) -> Route | None:
    return next((r for r in ROUTES if r.to_status == to_status and from_status in r.from_statuses), None)


@receiver(release_transitioned, dispatch_uid="deploy.on_release_transitioned")
def on_release_transitioned(sender, *, release_id, from_status, to_status, from_weight=0, to_weight=0, **kwargs):
    route = route_for(from_status, to_status)
    if route is None:
        return
    try:
        kind = Release.objects.filter(pk=release_id).values_list("environment__deploy_target", flat=True).first()
        if kind in (None, DeployTargetKind.NONE):
            return
        if route.task == "deploy.rollout_run":
            rollouts.rollout_create(release_id=release_id)  # the row is the queue; it queues the task
        elif route.task == "deploy.set_weight":
            if to_weight == from_weight:
                return  # resumed at the same weight: nothing moves
            rollouts.traffic_change_queue(release_id=release_id, task=route.task, args=[release_id, to_weight])
        else:
            # Numbered and kept on the rollout row: the sweeper sends it again if the target never got it.
            rollouts.traffic_change_queue(release_id=release_id, task=route.task, args=[release_id])
    except Exception:
        log.exception("deploy: reacting to release #%s %s -> %s failed", release_id, from_status, to_status)
