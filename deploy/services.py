"""Writes for deploys: values versions, environment credentials, revision records, and rollback to a revision.

Values and credentials are edited by ops (releases.policy.ENVIRONMENT_MANAGE); every change is a new version and
an audit row. Revision rows are written by the kubernetes driver after it has talked to the cluster: the network
part always runs outside a transaction, the bookkeeping in a short one.
"""
import difflib
import re

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from deploy import selectors
from deploy.credentials import CredentialKeyMissing, credential_file_allowed, encrypt_payload
from deploy.queue import enqueue_on_commit
from deploy.models import (
    REVISION_TRANSITIONS,
    CredentialKind,
    DeployRevision,
    DeployRevisionStatus,
    EnvironmentValues,
    ServiceValues,
    TargetCredential,
)
from deploy.targets.base import Revision, TargetError
from deploy.targets.k8s_credentials import KubernetesCredentials
from deploy.targets.values import ValuesError, load_values_yaml, merge_values, validate_values
from releases import events, policy
from releases.errors import ActionBlocked, InvalidInput, NotFound, TransitionNotAllowed
from releases.models import AgentService, Environment, Release
from releases.selectors import environment_by_name, service_by_name
from releases.services import Actor, audit_record, require_permission, traffic_check

R = DeployRevisionStatus
VALUES_MAX_BYTES = 64 * 1024





# --- values ------------------------------------------------------------------------------------------------


def _values_error(error: Exception) -> InvalidInput:
    if isinstance(error, ValuesError):
        return InvalidInput(str(error), field=error.path)
    return InvalidInput(str(error), field="text")


def _check_values(service: AgentService, environment: Environment | None, text: str) -> None:
    """The layer on its own, then every merge it takes part in, so a bad key is refused before it is stored."""
    source = f"values-{environment.name}.yaml" if environment else "values.yaml"
    if len(text.encode()) > VALUES_MAX_BYTES:
        raise InvalidInput(gettext("%(source)s: at most %(value)s KiB") % {
                               "source": source, "value": VALUES_MAX_BYTES // 1024}, field="text")
    try:
        validate_values(load_values_yaml(text, source=source), source=source, partial=True)
        if environment is not None:
            selectors.merged_values(service, environment, image_tag="validation", overlay_text=text)
            return
        overlays = (selectors.environment_values_current(service, env) for env in Environment.objects.all())
        checked = [row for row in overlays if row is not None]
        if not checked:
            merge_values(selectors.base_values(service, text=text), {}, image_tag="validation")
        for row in checked:
            selectors.merged_values(service, row.environment, image_tag="validation", base_text=text)
    except (ValuesError, ValueError) as error:
        raise _values_error(error) from None


def values_update(*, actor: Actor, service: str, text: str, environment: str | None = None,
                  comment: str = "") -> ServiceValues | EnvironmentValues:
    """Store a new version of values.yaml (environment=None) or values-<env>.yaml; unchanged text adds nothing."""
    require_permission(actor, policy.ENVIRONMENT_MANAGE)
    service_obj = service_by_name(service)
    env_obj = environment_by_name(environment) if environment else None
    _check_values(service_obj, env_obj, text)
    model = EnvironmentValues if env_obj else ServiceValues
    scope = {"service": service_obj, **({"environment": env_obj} if env_obj else {})}
    with transaction.atomic():
        AgentService.objects.select_for_update(no_key=True).filter(pk=service_obj.pk).get()
        current = model.objects.filter(**scope).order_by("-number").first()
        if current is not None and current.text == text:
            return current
        number = (current.number if current else 0) + 1
        row = model.objects.create(**scope, number=number, text=text, author=actor.user, author_name=actor.name,
                                   comment=comment[:500])
        name = f"values-{env_obj.name}.yaml" if env_obj else "values.yaml"
        diff = "".join(difflib.unified_diff((current.text if current else "").splitlines(True),
                                            text.splitlines(True), f"{name}#{number - 1}", f"{name}#{number}"))
        audit_record(actor=actor, action="values.update", object_type="environment_values" if env_obj else
                     "service_values", object_id=row.pk, service=service_obj, environment=env_obj,
                     to_state=f"#{number}", reason=comment, details={"file": name, "number": number,
                                                                       "diff": diff[:8000]})
        events.send_event_on_commit([events.FLEET_GROUP], "deploy.values_changed",
                                    {"service": service_obj.name, "environment": env_obj.name if env_obj else None,
                                     "number": number})
    return row


# --- credentials -------------------------------------------------------------------------------------------

def _encrypt(payload: dict) -> bytes:
    try:
        return encrypt_payload(payload)
    except CredentialKeyMissing as error:
        raise ActionBlocked(str(error)) from None


_URL = re.compile(r"^https?://[^\s/@]+(:\d+)?(/\S*)?$")


def credential_set(*, actor: Actor, environment: str, kind: str, kubeconfig: str = "", token: str = "",
                   host: str = "", ca_cert_pem: str = "", context: str = "", secret_path: str = "",
                   ca_path: str = "") -> TargetCredential:
    """Set how an environment's target authenticates. Secrets are encrypted before they reach the database; the
    audit row says who changed which kind of credential, never its contents."""
    require_permission(actor, policy.ENVIRONMENT_MANAGE)
    env_obj = environment_by_name(environment)
    host = host.strip()
    fields = {"kind": kind, "host": "", "context": context.strip(), "secret_path": "", "ca_path": "",
              "ciphertext": b""}
    if kind in (CredentialKind.TOKEN, CredentialKind.TOKEN_FILE):
        if not _URL.match(host):
            raise InvalidInput(gettext("host: must be the API server URL, e.g. https://10.0.0.1:6443 (no "
                                       "user:password@)"),
                               field="host")
        fields["host"] = host
    if kind == CredentialKind.KUBECONFIG:
        try:
            KubernetesCredentials.from_kubeconfig(kubeconfig, context=fields["context"] or None)
        except TargetError as error:
            raise InvalidInput(gettext("kubeconfig: %(error)s") % {"error": error}, field="kubeconfig") from None
        fields["ciphertext"] = _encrypt({"kubeconfig": kubeconfig})
    elif kind == CredentialKind.TOKEN:
        if not token.strip():
            raise InvalidInput(gettext("token: the service-account token is empty"), field="token")
        fields["ciphertext"] = _encrypt({"token": token.strip(), "ca_cert_pem": ca_cert_pem})
    elif kind in (CredentialKind.KUBECONFIG_FILE, CredentialKind.TOKEN_FILE):
        for name, value in (("secret_path", secret_path), ("ca_path", ca_path)):
            if value and not credential_file_allowed(value):
                raise InvalidInput(gettext("%(name)s: must be a file under "
                                           "%(directories)s (where secrets are mounted)") % {
                                       "name": name,
                                       "directories": ', '.join(settings.ROLLGATE_CREDENTIAL_FILE_DIRS)},
                                   field=name)
        if not secret_path:
            raise InvalidInput(gettext("secret_path: the path of the mounted secret file is required"),
                               field="secret_path")
        fields.update(secret_path=secret_path, ca_path=ca_path)
    else:
        raise InvalidInput(gettext("kind: must be one of %(values)s") % {
                               "values": ', '.join(CredentialKind.values)}, field="kind")
    with transaction.atomic():
        Environment.objects.select_for_update(no_key=True).filter(pk=env_obj.pk).get()
        before = TargetCredential.objects.filter(environment=env_obj).values_list("kind", flat=True).first()
        credential, _ = TargetCredential.objects.update_or_create(
            environment=env_obj, defaults={**fields, "updated_by_name": actor.name})
        audit_record(actor=actor, action="environment.credentials_set", object_type="environment",
                     object_id=env_obj.pk, environment=env_obj, from_state=before or "", to_state=kind,
                     details={"kind": kind, "host": fields["host"], "context": fields["context"],
                              "secret_path": fields["secret_path"]})
        events.send_event_on_commit([events.FLEET_GROUP], "environment.changed", {"environment": env_obj.name})
    return credential


# --- revision records (written by the driver after the cluster answered) -----------------------------------


def revision_record(*, service: AgentService, environment: Environment, revision: Revision, status: str,
                    actor: Actor, release: Release | None = None, description: str = "",
                    rollback_of: int | None = None, rollout_reason: str = "") -> DeployRevision:
    """Append the next revision number. A deployed revision supersedes the deployed one on its track."""
    with transaction.atomic():
        AgentService.objects.select_for_update(no_key=True).filter(pk=service.pk).get()
        last = DeployRevision.objects.filter(service=service, environment=environment).aggregate(n=Max("number"))["n"]
        if status == R.DEPLOYED:
            (DeployRevision.objects.filter(service=service, environment=environment, track=revision.track,
                                           status=R.DEPLOYED)
             .update(status=R.SUPERSEDED, status_changed_at=timezone.now()))
        row = DeployRevision.objects.create(
            service=service, environment=environment, number=(last or 0) + 1, status=status, track=revision.track,
            colour=revision.colour or "", image_tag=revision.image_tag, release=release, actor=actor.user,
            actor_name=actor.name, description=description[:500], rollback_of=rollback_of,
            revision_json=revision.to_json(), digest=revision.digest, rollout_reason=rollout_reason[:60])
        _announce_revision(row)
    return row


def revision_mark(*, revision_id: int, from_statuses: set[str], to_status: str) -> bool:
    """Compare-and-set a revision's status; False when it was no longer in one of ``from_statuses``. An edge that
    REVISION_TRANSITIONS lacks raises TransitionNotAllowed."""
    illegal = sorted(s for s in from_statuses if to_status not in REVISION_TRANSITIONS[s])
    if illegal:
        raise TransitionNotAllowed(gettext("a revision cannot go from %(illegal)s to %(to_status)s") % {
                                       "illegal": ', '.join(illegal), "to_status": to_status}, field="status")
    with transaction.atomic():
        updated = DeployRevision.objects.filter(pk=revision_id, status__in=from_statuses).update(
            status=to_status, status_changed_at=timezone.now())
        if updated:
            _announce_revision(DeployRevision.objects.select_related("service", "environment").get(pk=revision_id))
    return bool(updated)


def _announce_revision(row: DeployRevision) -> None:
    groups = [events.FLEET_GROUP] + ([events.release_group(row.release_id)] if row.release_id else [])
    events.send_event_on_commit(groups, "deploy.revision", {
        "service": row.service.name, "environment": row.environment.name, "number": row.number,
        "status": row.status, "release_id": row.release_id})


# --- rollback to a chosen revision ------------------------------------------------------------------------


def revision_rollback_request(*, actor: Actor, service: str, environment: str, number: int,
                              comment: str = "") -> DeployRevision:
    """Check and audit a "rollback to N", then queue it (the re-apply and its rollout run in a worker)."""
    require_permission(actor, policy.RELEASE_ROLLBACK)
    service_obj, env_obj = service_by_name(service), environment_by_name(environment)
    row = selectors.revision_get(service_obj, env_obj, number)
    if row is None:
        raise NotFound(gettext("%(service)s has no revision %(number)s in %(env)s") % {
                           "service": service_obj.name, "number": number, "env": env_obj.name})
    if actor.user is not None:
        allowed, why = selectors.revision_rollback_state(user=actor.user, revision=row)
        if not allowed:
            raise TransitionNotAllowed(gettext("cannot roll back to revision %(number)s: %(why)s") % {
                                           "number": number, "why": why})
    # Freeze windows, approvals and blocked images: the same rule as every other traffic move.
    traffic_check(move=policy.MOVE_REVISION_ROLLBACK, service=service_obj, environment=env_obj, tag=row.image_tag)
    with transaction.atomic():
        audit_record(actor=actor, action="deploy.rollback_requested", object_type="deploy_revision",
                     object_id=row.pk, release=row.release, service=service_obj, environment=env_obj,
                     to_state=f"rollback to {number}", reason=comment,
                     details={"revision": number, "image_tag": row.image_tag})
        user_id = actor.user.pk if actor.user is not None else None
        enqueue_on_commit("deploy.revision_rollback", row.pk, user_id=user_id, actor_name=actor.name)
    return row
