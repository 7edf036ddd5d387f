"""The release page's pipeline section: stages, durations, a live log tail, scan reports, retry and override,
then the release's rollout (the deploy app's Rollout row: status, attempt, reason, the target's log tail).

Loaded by hx-get when the release page renders and re-fetched on "live:pipeline" (pipeline.log / pipeline.stage
events), "live:deploy" (deploy.rollout, deploy.revision) and by a slow poll. Reads through pipelines.selectors
and deploy.selectors, writes through pipelines.services.
"""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_POST

from deploy import selectors as deploy_selectors
from frontend.access import page_requires
from pipelines import selectors, services
from releases import policy
from releases import selectors as release_selectors
from releases.errors import DomainError
from releases.services import Actor

TAIL_LINES = 15


def _render(request, release_id: int, message: str = "", error: str = ""):
    release = release_selectors.release_get(user=request.user, release_id=release_id)
    if release is None:
        raise Http404("no such release")
    pipeline = selectors.pipeline_for_release(user=request.user, release_id=release_id)
    summary = selectors.pipeline_summary(pipeline, tail=TAIL_LINES) if pipeline else None
    running = summary and next((s for s in summary["stages"] if s["status"] == "running"), None)
    shown = running or (summary and next((s for s in reversed(summary["stages"]) if s["log_tail"]), None))
    rollout = deploy_selectors.rollout_for_release(release_id)
    context = {
        "release": release, "pipeline": summary, "log_stage": shown, "message": message, "error": error,
        "rollout": rollout, "rollout_tail": deploy_selectors.rollout_log_tail(rollout) if rollout else [],
        "can_retry": bool(policy.can(request.user, policy.PIPELINE_RUN)) and summary and summary["status"] == "failed",
        "can_override": bool(policy.can(request.user, policy.SCAN_OVERRIDE)) and summary and any(
            s["name"] == "scan" and s["status"] == "waiting" for s in summary["stages"]),
        "waiting_scan": summary and next((s["failure_reason"] or "waiting" for s in summary["stages"]
                                          if s["name"] == "scan" and s["status"] == "waiting"), ""),
    }
    return render(request, "frontend/release/_pipeline.html", context)


@page_requires(policy.RELEASE_VIEW)
def release_pipeline(request, release_id: int):
    return _render(request, release_id)


@login_required
@require_POST
def release_pipeline_action(request, release_id: int, action: str):
    actor = Actor.of(request.user)
    try:
        if action == "retry":
            services.pipeline_retry_from_failed_stage(actor=actor, release_id=release_id)
            return _render(request, release_id, message="retry started")
        if action == "scan-override":
            services.scan_override(actor=actor, release_id=release_id, reason=request.POST.get("reason", "")[:4000])
            return _render(request, release_id, message="override recorded; pushing")
    except DomainError as error:
        return _render(request, release_id, error=f"{action} refused: {error.message}")
    raise Http404("no such action")
