"""Reads for deploy records: current and past values, merged values, revision history, credential summaries."""
import re

from django.db.models import QuerySet

from deploy.models import (
    DeployRevision,
    DeployRevisionStatus,
    EnvironmentValues,
    Rollout,
    ServiceValues,
    TargetCredential,
)
from deploy.targets.base import TRACK_STABLE
from deploy.targets.values import deep_merge, load_values_yaml, merge_values
from releases import policy
from releases.models import AgentService, Environment
from releases.selectors import traffic_refusal

_USERINFO = re.compile(r"(https?://)[^/@\s]+@")
# What every service starts from before its values.yaml: the repository comes from the service record.
DEFAULT_PORT = 8080


def default_values(service: AgentService) -> dict:
    return {"image": {"repository": service.image_repository}, "replicaCount": 1,
            "service": {"type": "ClusterIP", "port": DEFAULT_PORT}}


def service_values_current(service: AgentService) -> ServiceValues | None:
    return ServiceValues.objects.filter(service=service).order_by("-number").first()


def environment_values_current(service: AgentService, environment: Environment) -> EnvironmentValues | None:
    return EnvironmentValues.objects.filter(service=service, environment=environment).order_by("-number").first()


def service_values_history(service: AgentService) -> QuerySet:
    return ServiceValues.objects.filter(service=service).order_by("-number")


def environment_values_history(service: AgentService, environment: Environment) -> QuerySet:
    return EnvironmentValues.objects.filter(service=service, environment=environment).order_by("-number")


def base_values(service: AgentService, *, text: str | None = None) -> dict:
    """The defaults deep-merged with the service's values.yaml (``text`` instead of the stored one if given)."""
    if text is None:
        current = service_values_current(service)
        text = current.text if current else ""
    return deep_merge(default_values(service), load_values_yaml(text, source="values.yaml"))


def merged_values(service: AgentService, environment: Environment, *, image_tag: str,
                  base_text: str | None = None, overlay_text: str | None = None) -> dict:
    """values.yaml deep-merged with values-<env>.yaml and the release's image tag; raises ValuesError/ValueError."""
    if overlay_text is None:
        current = environment_values_current(service, environment)
        overlay_text = current.text if current else ""
    overlay_source = f"values-{environment.name}.yaml"
    overlay = load_values_yaml(overlay_text, source=overlay_source)
    return merge_values(base_values(service, text=base_text), overlay, image_tag=image_tag,
                        overlay_source=overlay_source)


def revision_history(service: AgentService, environment: Environment) -> QuerySet:
    return (DeployRevision.objects.filter(service=service, environment=environment)
            .select_related("release", "service", "environment").order_by("-number"))


def revision_get(service: AgentService, environment: Environment, number: int) -> DeployRevision | None:
    return DeployRevision.objects.filter(service=service, environment=environment, number=number).first()


def last_deployed(service: AgentService, environment: Environment, *, track: str = TRACK_STABLE,
                  release_id: int | None = None) -> DeployRevision | None:
    rows = DeployRevision.objects.filter(service=service, environment=environment, track=track,
                                         status=DeployRevisionStatus.DEPLOYED)
    if release_id is not None:
        rows = rows.filter(release_id=release_id)
    return rows.order_by("-number").first()


def release_stable_revision(release_id: int) -> DeployRevision | None:
    """The newest stable revision that ran this release successfully (deployed then, maybe superseded since)."""
    return (DeployRevision.objects.filter(release_id=release_id, track=TRACK_STABLE,
                                          status__in=[DeployRevisionStatus.DEPLOYED, DeployRevisionStatus.SUPERSEDED])
            .order_by("-number").first())


def rollout_for_release(release_id: int) -> Rollout | None:
    """The release's rollout (one per release that went deploying), or None. Callers check the user may see the
    release first."""
    return Rollout.objects.filter(release_id=release_id).first()


def rollout_log_tail(rollout: Rollout, *, lines: int = 15) -> list[str]:
    return rollout.log.splitlines()[-lines:]


def credential_summary(environment: Environment) -> dict:
    """What the API and pages may show about credentials: whether they are set, their kind, never the secret."""
    credential = TargetCredential.objects.filter(environment=environment).first()
    if credential is None:
        return {"environment": environment.name, "configured": False, "kind": None, "host": "", "context": "",
                "secret_path": "", "updated_by": "", "updated_at": None}
    return {"environment": environment.name, "configured": True, "kind": credential.kind,
            "host": _USERINFO.sub(r"\1", credential.host), "context": credential.context,
            "secret_path": credential.secret_path, "updated_by": credential.updated_by_name,
            "updated_at": credential.updated_at}


_UNSET = object()


def revision_rollback_state(*, user, revision: DeployRevision, current=_UNSET) -> tuple[bool, str]:
    """May this user roll back to this revision now, and why not (the page greys the button out with it).
    A page listing many revisions passes `current` (last_deployed, looked up once)."""
    decision = policy.can(user, policy.RELEASE_ROLLBACK)
    if not decision:
        return False, decision.reason
    if revision.track != TRACK_STABLE:
        return False, "a canary revision is not a rollback target; roll the release back instead"
    if revision.environment.deploy_target != "kubernetes":
        return False, f"{revision.environment.name} has no kubernetes deploy target"
    if current is _UNSET:
        current = last_deployed(revision.service, revision.environment)
    if current is not None and current.digest == revision.digest:
        return False, "this revision's manifests are what runs now"
    refusal = traffic_refusal(move=policy.MOVE_REVISION_ROLLBACK, service=revision.service,
                              environment=revision.environment, tag=revision.image_tag)
    if refusal:
        return False, refusal
    return True, ""


def _flat(values, prefix: str = "") -> dict:
    if isinstance(values, dict):
        out = {}
        for key, value in values.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: values}


VALUES_DIFF_LIMIT = 50


def values_evidence(release) -> dict:
    """Approval evidence (releases.selectors.EVIDENCE_SOURCES["values"]): the values this release would deploy
    (values.yaml + values-<env>.yaml as stored now, with its image tag) against the values of what runs now (the
    last deployed stable revision, with the values files as they were when it was deployed)."""
    from deploy.targets.values import ValuesError

    from releases.selectors import live_release

    service, environment = release.service, release.environment
    revision = last_deployed(service, environment)
    if revision is not None:
        running_tag, at, number = revision.image_tag, revision.created_at, revision.number
    else:  # a record-only environment has no revisions: what runs is its live release, since it went live
        live = live_release(service, environment)
        if live is None or live.pk == release.pk:
            return {"running": None, "note": f"nothing runs in {environment.name} yet", "changes": []}
        running_tag, at, number = live.version.tag, live.status_changed_at, None
    try:
        now = merged_values(service, environment, image_tag=release.version.tag)
        base_then = service_values_history(service).filter(created_at__lte=at).first()
        overlay_then = environment_values_history(service, environment).filter(created_at__lte=at).first()
        then = merged_values(service, environment, image_tag=running_tag,
                             base_text=base_then.text if base_then else "",
                             overlay_text=overlay_then.text if overlay_then else "")
    except (ValuesError, ValueError) as error:
        return {"running": running_tag, "error": str(error)[:300], "changes": []}
    before, after = _flat(then), _flat(now)
    changes = [{"path": path, "running": before.get(path), "new": after.get(path)}
               for path in sorted(set(before) | set(after)) if before.get(path) != after.get(path)]
    return {"running": running_tag, "running_revision": number, "changes": changes[:VALUES_DIFF_LIMIT],
            "more": max(0, len(changes) - VALUES_DIFF_LIMIT)}
