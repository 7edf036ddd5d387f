"""The work of each stage: prepare, build, scan, push.

A runner takes a StageContext and returns on success, or raises one of the outcomes below. Runners call the
Django-free integrations (docker_build, registry, scanners, notify) and record what they produce through
pipelines.services. They run outside any database transaction: builds and pushes take minutes.

settings.ROLLGATE_PIPELINE_RUNNERS (stage name -> dotted path) replaces a built-in runner; the benchmark uses
it to measure orchestration alone with `pipelines.runners.noop`.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

from pipelines import services
from pipelines.models import Artefact, ArtefactKind, LogLevel, Pipeline, StageName
from releases.models import Release
from releases.services import version_record_image


class StageFailed(Exception):
    """The stage failed for good; `str(exc)` is the reason users see."""


class TransientStageError(Exception):
    """Worth another try later (engine or database unreachable for a moment)."""


class StageBlocked(Exception):
    """The scan found what may never be pushed (a Critical finding)."""


class StageNeedsOverride(Exception):
    """The scan found what a release_manager must accept in writing (High findings, an unverified check)."""


class StageSkipped(Exception):
    """Nothing to do (build and push of a reused image); `str(exc)` says why."""


@dataclass
class StageContext:
    stage_id: int
    pipeline_id: int
    release_id: int
    name: str
    attempt: int
    log: Callable[..., None]  # log(message, level="info")

    def release(self) -> Release:
        return Release.objects.select_related("service", "environment", "version").get(pk=self.release_id)


Runner = Callable[[StageContext], None]


# --- helpers ---------------------------------------------------------------------------------------------------


def image_reference_for(release: Release):
    """`<registry>/<path>/<service>:<tag>` from the service's image_repository and the version tag."""
    from pipelines.integrations.docker_build import parse_image_reference

    try:
        return parse_image_reference(f"{release.service.image_repository}:{release.version.tag}")
    except ValueError as exc:
        raise StageFailed(f"image_repository of {release.service.name}: {exc}") from None


def build_context_of(release: Release) -> Path:
    path = (release.service.source_path or "").strip()
    if not path:
        raise StageFailed(f"service {release.service.name} has no source_path: set it to the directory with its "
                          f"Dockerfile (the build context on the worker)")
    return Path(path)


# --- build once: a version's image is built, scanned and pushed by one pipeline; later releases reuse it ------


def reused_build(ctx: StageContext) -> Pipeline | None:
    """The pipeline whose image this one reuses (pipelines.services._build_of chose it), or None."""
    pipeline = Pipeline.objects.select_related("reused_from").get(pk=ctx.pipeline_id)
    return pipeline.reused_from


def reuse_words(source: Pipeline, release: Release) -> str:
    return f"image reused from release #{source.release_id}, digest {release.version.image_digest}"


def _prove_reused_image(ctx: StageContext, release: Release, source: Pipeline) -> bool:
    """Read the manifest back from the registry: the tag must still serve the digest that was built and scanned.
    False (and the pipeline builds again) when it does not."""
    from pipelines.integrations.registry import ManifestError, manifest_digest

    reference = image_reference_for(release)
    try:
        served = manifest_digest(reference=reference)
    except ManifestError as exc:
        served, why = "", str(exc)
    else:
        why = f"the registry serves {served} for {reference}"
    if served == release.version.image_digest:
        ctx.log(f"{reuse_words(source, release)} (read back from the registry: still there); build and push are "
                f"skipped, its scan is judged again for {release.environment.name}")
        return True
    services.pipeline_stop_reuse(pipeline_id=ctx.pipeline_id, stage_id=ctx.stage_id,
                                 reason=f"the image of release #{source.release_id} "
                                        f"({release.version.image_digest}) is gone: {why}")
    return False


def _reused_scan_results(ctx: StageContext, source: Pipeline):
    """The checks of the scan that ran on this digest (they travel with it), and its SBOM if any."""
    from pipelines.integrations.scan_results import CheckResult, CheckStatus, Finding, Severity

    stored = {a.kind: a.content for a in Artefact.objects.filter(
        stage__pipeline=source, kind__in=[ArtefactKind.SCAN_REPORT_JSON, ArtefactKind.SBOM])}
    if ArtefactKind.SCAN_REPORT_JSON not in stored:
        return [CheckResult(name="reused_scan", status=CheckStatus.UNVERIFIED,
                            reason=f"the scan of release #{source.release_id} left no report to reuse")], None
    report = json.loads(stored[ArtefactKind.SCAN_REPORT_JSON])
    results = [CheckResult(name=check["name"], status=CheckStatus(check["status"]), reason=check.get("reason", ""),
                           details=check.get("details") or {}, duration_s=check.get("duration_s", 0.0),
                           findings=[Finding(**{**finding, "severity": Severity(finding["severity"])})
                                     for finding in check.get("findings", [])])
               for check in report.get("checks", [])]
    sbom = json.loads(stored[ArtefactKind.SBOM]) if ArtefactKind.SBOM in stored else None
    return results, sbom


# --- the stages ------------------------------------------------------------------------------------------------


def prepare(ctx: StageContext) -> None:
    release = ctx.release()
    source = reused_build(ctx)
    if source is not None and _prove_reused_image(ctx, release, source):
        return
    context = build_context_of(release)
    if not context.is_dir():
        raise StageFailed(f"build context {context} of {release.service.name} does not exist on this worker")
    if not (context / "Dockerfile").is_file():
        raise StageFailed(f"no Dockerfile in the build context {context}")
    reference = image_reference_for(release)
    ctx.log(f"release #{release.pk}: {release.service.name} {release.version.tag} "
            f"(commit {release.version.commit_sha[:12]}) for {release.environment.name}")
    ctx.log(f"build context {context}; image {reference}")
    version_record_image(release_id=release.pk, reference=str(reference))


def build(ctx: StageContext) -> None:
    from pipelines.integrations.docker_build import BuildFailed, ImageRejected, image_build_and_check

    release = ctx.release()
    source = reused_build(ctx)
    if source is not None:
        raise StageSkipped(reuse_words(source, release))
    reference = image_reference_for(release)
    try:
        built, check = image_build_and_check(
            context_dir=build_context_of(release), reference=reference,
            max_size_bytes=settings.ROLLGATE_PIPELINE_MAX_IMAGE_BYTES, log=ctx.log)
    except ImageRejected as rejected:
        services.artefact_store(stage_id=ctx.stage_id, kind=ArtefactKind.IMAGE_CHECK,
                                content=json.dumps(rejected.check.as_dict(), indent=2))
        raise StageFailed("image may not leave: " + "; ".join(rejected.check.problems)) from None
    except BuildFailed as failed:
        if failed.reason.startswith("cannot reach the build engine"):
            raise TransientStageError(failed.reason) from None
        raise StageFailed(failed.reason) from None
    services.artefact_store(stage_id=ctx.stage_id, kind=ArtefactKind.IMAGE_CHECK,
                            content=json.dumps({**check.as_dict(), "build_duration_s": built.duration_s}, indent=2))
    ctx.log(f"built {reference} in {built.duration_s} s; image id {check.image_id}")


def scan(ctx: StageContext) -> None:
    from pipelines.integrations.scan_policy import ScanVerdict, scan_decide
    from pipelines.integrations.scan_report import scan_report_dumps, scan_report_html, scan_report_json
    from pipelines.integrations.scanners import service_scan

    release = ctx.release()
    reference = image_reference_for(release)
    source = reused_build(ctx)
    if source is not None:
        # The scan result travels with the digest: the same checks, judged for this environment.
        results, sbom = _reused_scan_results(ctx, source)
        ctx.log(f"scan of release #{source.release_id} reused ({release.version.image_digest}); judged for "
                f"{release.environment.name}")
    else:
        context = build_context_of(release)
        supplied = context / settings.ROLLGATE_PIPELINE_TRIVY_REPORT_NAME
        with tempfile.TemporaryDirectory(prefix="rollgate-scan-") as workdir:
            results, sbom = service_scan(context_dir=context, image=str(reference),
                                         sbom_output=Path(workdir) / "sbom.json",
                                         trivy_report=supplied if supplied.is_file() else None)
    for result in results:
        level = LogLevel.INFO if result.status == "passed" else LogLevel.WARNING
        ctx.log(f"{result.name}: {result.status} - {result.reason}", level)
    decision = scan_decide(results=results, environment=release.environment.name)
    report = scan_report_json(subject=str(reference), results=results, decision=decision)
    services.artefact_store(stage_id=ctx.stage_id, kind=ArtefactKind.SCAN_REPORT_JSON,
                            content=scan_report_dumps(report))
    services.artefact_store(stage_id=ctx.stage_id, kind=ArtefactKind.SCAN_REPORT_HTML,
                            content=scan_report_html(report))
    if sbom is not None:
        services.artefact_store(stage_id=ctx.stage_id, kind=ArtefactKind.SBOM, content=json.dumps(sbom, indent=2))
    reasons = "; ".join(decision.reasons) or "no findings"
    ctx.log(f"scan verdict: {decision.verdict.value} ({reasons})")
    if decision.verdict == ScanVerdict.BLOCKED:
        raise StageBlocked(reasons)
    if decision.verdict == ScanVerdict.NEEDS_OVERRIDE:
        raise StageNeedsOverride(reasons)


def push(ctx: StageContext) -> None:
    from pipelines.integrations.registry import PushFailed, image_push

    release = ctx.release()
    source = reused_build(ctx)
    if source is not None:
        raise StageSkipped(f"{reuse_words(source, release)}: already in the registry, nothing to push")
    reference = image_reference_for(release)
    try:
        result = image_push(reference=reference, max_attempts=settings.ROLLGATE_PIPELINE_PUSH_ATTEMPTS,
                            backoff_s=settings.ROLLGATE_PIPELINE_PUSH_BACKOFF_SECONDS, log=ctx.log,
                            timeout_s=settings.ROLLGATE_PIPELINE_PUSH_TIMEOUT_SECONDS)
    except PushFailed as failed:
        services.artefact_store(stage_id=ctx.stage_id, kind=ArtefactKind.PUSH_RESULT, content=json.dumps(
            {"reference": failed.reference, "digest": "", "attempts": [vars(a) for a in failed.attempts]}, indent=2))
        raise StageFailed(str(failed)) from None
    services.artefact_store(stage_id=ctx.stage_id, kind=ArtefactKind.PUSH_RESULT,
                            content=json.dumps(result.as_dict(), indent=2))
    version_record_image(release_id=release.pk, reference=result.reference, digest=result.digest)


def noop(ctx: StageContext) -> None:
    """No work at all: what is left of a stage is Rollgate's own orchestration (the benchmark's baseline)."""


BUILT_IN: dict[str, Runner] = {
    StageName.PREPARE: prepare,
    StageName.BUILD: build,
    StageName.SCAN: scan,
    StageName.PUSH: push,
}


def runner_for(name: str) -> Runner:
    override = settings.ROLLGATE_PIPELINE_RUNNERS.get(name)
    if override:
        return import_string(override)
    return BUILT_IN[name]
