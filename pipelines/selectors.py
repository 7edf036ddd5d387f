"""Reads of pipelines, stages, logs and artefacts, filtered by what the user may see (through releases.selectors)."""
from __future__ import annotations

from django.urls import reverse

from pipelines.models import Artefact, Pipeline, Stage, StageLogLine, WebhookEndpoint
from releases import policy, selectors as release_selectors

LOG_TAIL = 20
LOG_PAGE_MAX = 1000


def pipeline_for_release(*, user, release_id: int) -> Pipeline | None:
    """The release's latest pipeline, or None when the user may not see the release or it has none."""
    if release_selectors.release_get(user=user, release_id=release_id) is None:
        return None
    return Pipeline.objects.filter(release_id=release_id).order_by("-id").first()


def pipeline_get(*, user, pipeline_id: int) -> Pipeline | None:
    pipeline = Pipeline.objects.filter(pk=pipeline_id).first()
    if pipeline is None or release_selectors.release_get(user=user, release_id=pipeline.release_id) is None:
        return None
    return pipeline


def stage_log(*, stage: Stage, after_id: int = 0, limit: int = LOG_PAGE_MAX) -> list[StageLogLine]:
    return list(stage.log_lines.filter(id__gt=after_id).order_by("id")[:min(limit, LOG_PAGE_MAX)])


def stage_log_tail(*, stage: Stage, lines: int = LOG_TAIL) -> list[StageLogLine]:
    return list(stage.log_lines.order_by("-id")[:lines])[::-1]


def artefact_get(*, user, pipeline_id: int, artefact_id: int) -> Artefact | None:
    if pipeline_get(user=user, pipeline_id=pipeline_id) is None:
        return None
    return Artefact.objects.select_related("stage").filter(pk=artefact_id, stage__pipeline_id=pipeline_id).first()


def _line(line: StageLogLine) -> dict:
    return {"id": line.pk, "time": line.time.isoformat(), "level": line.level, "message": line.message}


def pipeline_summary(pipeline: Pipeline, *, tail: int = LOG_TAIL) -> dict:
    """Everything the API and the page show: stages with durations, log tails and artefact links."""
    stages = list(pipeline.stages.prefetch_related("artefacts").order_by("position"))
    if pipeline.reused_from_id:
        pipeline = Pipeline.objects.select_related("reused_from", "release__version").get(pk=pipeline.pk)
    duration = None
    if pipeline.started_at and pipeline.finished_at:
        duration = round((pipeline.finished_at - pipeline.started_at).total_seconds(), 3)
    return {
        "id": pipeline.pk,
        "release_id": pipeline.release_id,
        "status": pipeline.status,
        "labels": pipeline.labels,
        "failure_reason": pipeline.failure_reason,
        "reused_from": ({"release_id": pipeline.reused_from.release_id, "pipeline_id": pipeline.reused_from_id,
                         "digest": pipeline.release.version.image_digest} if pipeline.reused_from_id else None),
        "scan_override": ({"by": pipeline.scan_override_by, "reason": pipeline.scan_override_reason,
                           "overridden": pipeline.scan_override_findings}
                          if pipeline.scan_override_by else None),
        "created_at": pipeline.created_at.isoformat(),
        "started_at": pipeline.started_at.isoformat() if pipeline.started_at else None,
        "finished_at": pipeline.finished_at.isoformat() if pipeline.finished_at else None,
        "duration_s": duration,
        "stages": [
            {
                "name": stage.name,
                "status": stage.status,
                "attempt": stage.attempt,
                "task_id": stage.task_id,
                "started_at": stage.started_at.isoformat() if stage.started_at else None,
                "finished_at": stage.finished_at.isoformat() if stage.finished_at else None,
                "duration_s": stage.duration_s,
                "failure_reason": stage.failure_reason,
                "log_url": reverse("api-pipeline-stage-log", args=[pipeline.pk, stage.name]),
                "log_tail": [_line(line) for line in stage_log_tail(stage=stage, lines=tail)],
                "artefacts": [
                    {"id": artefact.pk, "kind": artefact.kind, "label": artefact.get_kind_display(),
                     "size_bytes": artefact.size_bytes, "content_type": artefact.content_type,
                     "url": reverse("api-pipeline-artefact", args=[pipeline.pk, artefact.pk])}
                    for artefact in stage.artefacts.all()
                ],
            }
            for stage in stages
        ],
    }


def webhook_endpoint_list(*, user):
    if not policy.can(user, policy.WEBHOOK_MANAGE):
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.all()


def scan_evidence(release) -> dict:
    """Approval evidence (releases.selectors.EVIDENCE_SOURCES["scan"]): the scan verdict of the release's image,
    its override if any, and where the image was built (build once)."""
    import json

    from pipelines.models import ArtefactKind

    pipeline = (Pipeline.objects.filter(release_id=release.pk).select_related("reused_from").order_by("-id")
                .first())
    if pipeline is None:
        return {"state": "no pipeline yet", "digest": release.version.image_digest}
    scan = pipeline.stages.filter(name="scan").first()
    report = (Artefact.objects.filter(stage=scan, kind=ArtefactKind.SCAN_REPORT_JSON)
              .values_list("content", flat=True).first()) if scan else None
    decision = json.loads(report).get("decision", {}) if report else {}
    return {
        "state": scan.status if scan else "no scan stage",
        "verdict": decision.get("verdict", ""),
        "reasons": list(decision.get("reasons", []))[:10],
        "severity_counts": decision.get("severity_counts", {}),
        "unverified_checks": decision.get("unverified_checks", []),
        "override": ({"by": pipeline.scan_override_by, "reason": pipeline.scan_override_reason,
                      "overridden": pipeline.scan_override_findings} if pipeline.scan_override_by else None),
        "digest": release.version.image_digest,
        "built_by_release": pipeline.reused_from.release_id if pipeline.reused_from_id else release.pk,
    }
