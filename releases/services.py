"""Every write to the release domain. Promote, pause, resume, roll back, approve and reject live here.

Interactive transitions lock the service row (serialising every change to one service's releases), re-read the
release, check role, state machine and rules, change it, write the audit row and publish the live event on commit.
Worker transitions (pipelines, SLA gate) use compare-and-set and return quietly when someone else got there first.
"""
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, pgettext_lazy
from rest_framework.authtoken.models import Token
from structlog import get_logger
from structlog.contextvars import bind_contextvars

from releases import audit_chain, events, policy, protection
from releases.tokens import token_digest
from releases.choices import (
    ALLOWED_TRANSITIONS,
    CANARY_STATUSES,
    OPEN_FOR_APPROVAL,
    OPEN_RELEASE_STATUSES,
    ApprovalDecision,
    DeployTargetKind,
    ReleaseStatus,
)
from releases.conventions import MOVING_TAGS, ConventionError, check_branch, check_tag_environment, parse_tag
from releases.errors import ActionBlocked, DuplicateRelease, Forbidden, InvalidInput, NotFound, TransitionNotAllowed
from releases.models import AgentService, Approval, AuditEvent, Environment, Release, Version
from releases.selectors import approval_evidence, approval_summary, environment_by_name, evidence_digest, \
    gray_ladder, live_release, missing_words, next_environment, next_step, service_by_name, step_refusal, \
    step_requirements, traffic_refusal
from releases.signals import approval_needed, audit_recorded, release_transitioned

S = ReleaseStatus
_audit_log = get_logger("rollgate.audit")


@dataclass(frozen=True)
class Actor:
    """Who acts: a person (checked against the policy) or a system component such as the SLA gate."""

    user: object | None
    name: str

    @classmethod
    def of(cls, user) -> "Actor":
        return cls(user=user, name=user.get_username())

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(user=None, name=name)


def require_permission(actor: Actor, action: str) -> None:
    """Raise Forbidden (with the policy's reason) unless the person may do `action`. Every app's services call
    this; system components act on rules their own service already checked."""
    if actor.user is None:
        return  # system components act on rules already checked by their own service
    decision = policy.can(actor.user, action)
    if not decision:
        raise Forbidden(decision.reason)


# --- audit -------------------------------------------------------------------------------------------------


def audit_record(
    *, actor: Actor, action: str, object_type: str, object_id, release: Release | None = None,
    service: AgentService | None = None, environment: Environment | None = None, from_state: str = "",
    to_state: str = "", reason: str = "", details: dict | None = None,
) -> AuditEvent:
    if release is not None:
        service = service or release.service
        environment = environment or release.environment
    event = AuditEvent(
        actor=actor.user, actor_name=actor.name, action=action, object_type=object_type, object_id=str(object_id),
        release=release, service=service, environment=environment, from_state=from_state, to_state=to_state,
        reason=reason, details=json.loads(json.dumps(details or {}, default=str)), created_at=timezone.now(),
    )
    with transaction.atomic():
        # The chain lock is the last lock any transaction takes (after service, release, pipeline/rollout rows):
        # it is held to commit, so a transaction must not lock more rows after writing its audit row.
        audit_chain.lock_chain()
        event.prev_hash = AuditEvent.objects.order_by("-id").values_list("row_hash", flat=True).first() or ""
        event.row_hash = audit_chain.row_hash(event, event.prev_hash)
        event.save(force_insert=True)
        audit_recorded.send_robust(sender=AuditEvent, audit=event)  # notifications: deliveries in this transaction
    # Later log lines of this request or task say who acted and on what; the row is logged once it is committed.
    bind_contextvars(actor=actor.name, **({"release_id": release.pk} if release is not None else {}))
    line = {"audit_id": event.pk, "object_type": object_type, "object_id": str(object_id), "from_state": from_state,
            "to_state": to_state, "environment": environment.name if environment else None,
            "service": service.name if service else None}
    transaction.on_commit(lambda: _audit_log.info(action, **line))
    events.send_event_on_commit(
        [events.AUDIT_GROUP], "audit.created",
        {"audit_id": event.pk, "action": action, "release_id": release.pk if release else None},
    )
    return event


# --- people: role changes and sessions (live sockets follow them) -------------------------------------------


def user_roles_changed(*, actor: Actor, user, added: list[str], removed: list[str]) -> None:
    """Audit a role (group) change and close the user's open sockets on commit: they reconnect with what the new
    roles allow. Called by the m2m_changed receiver, whoever changed the groups (admin, shell, seed_demo)."""
    with transaction.atomic():
        audit_record(actor=actor, action="user.roles_changed", object_type="user", object_id=user.pk,
                     reason=f"{user.get_username()}: " + "; ".join(
                         part for part in (f"added {', '.join(added)}" if added else "",
                                           f"removed {', '.join(removed)}" if removed else "") if part),
                     details={"username": user.get_username(), "added": added, "removed": removed,
                              "roles": sorted(policy.roles_of_fresh(user))})
        events.send_event_on_commit([events.user_group(user.pk)], events.ROLES_CHANGED, {"user_id": user.pk})


def api_token_issue(*, user) -> str:
    """A new API token for `user`, replacing the previous one (only its digest is stored, so the old key cannot be
    shown again). Returns the key: the only time anyone sees it."""
    key = secrets.token_hex(20)
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        Token.objects.create(user=user, key=token_digest(key))
        audit_record(actor=Actor.of(user), action="auth.token_issued", object_type="user", object_id=user.pk,
                     reason="API token issued; the previous one, if any, is revoked")
    return key


def session_ended(*, session_key: str) -> None:
    """A login session ended (logout): close the sockets it opened."""
    if session_key:
        events.send_event(groups=[events.session_group(session_key)], event_type=events.SESSION_ENDED, payload={})


# --- services and environments -------------------------------------------------------------------------------


def service_create(*, actor: Actor, name: str, image_repository: str, description: str = "",
                   source_repository: str = "", source_path: str = "") -> AgentService:
    require_permission(actor, policy.SERVICE_MANAGE)
    with transaction.atomic():
        if AgentService.objects.filter(name=name).exists():
            raise TransitionNotAllowed(gettext("a service named '%(name)s' already exists") % {
                                           "name": name}, field="name")
        service = AgentService.objects.create(
            name=name, image_repository=image_repository, description=description,
            source_repository=source_repository, source_path=source_path,
        )
        audit_record(actor=actor, action="service.create", object_type="service", object_id=service.pk,
                     service=service, to_state="created", details={"image_repository": image_repository})
        events.send_event_on_commit([events.FLEET_GROUP], "service.changed", {"service": service.name})
    return service


ENVIRONMENT_EDITABLE = ("protected", "required_approvals", "gray_step_approvals", "freeze_windows", "auto_rollback")


def environment_update(*, actor: Actor, name: str, changes: dict) -> Environment:
    """Change an environment's protection, approvals (before promotion and at gray steps), freeze windows or
    auto-rollback. The protection rules (releases.protection) are checked on the environment as it would be."""
    require_permission(actor, policy.ENVIRONMENT_MANAGE)
    with transaction.atomic():
        environment = Environment.objects.select_for_update(no_key=True).get(pk=environment_by_name(name).pk)
        before = {key: getattr(environment, key) for key in changes}
        for key, value in changes.items():
            if key not in ENVIRONMENT_EDITABLE:
                raise InvalidInput(gettext("%(key)s: cannot be changed here") % {"key": key}, field=key)
            if key == "required_approvals":
                value = protection.check_required_approvals(value)
            elif key == "gray_step_approvals":
                value = protection.check_step_approvals(value, ladder=gray_ladder(environment))
            setattr(environment, key, value)
            changes[key] = value
        protection.check_protection(protected=environment.protected,
                                    required_approvals=environment.required_approvals or {}, changed=set(changes))
        environment.save(update_fields=list(changes))
        audit_record(actor=actor, action="environment.update", object_type="environment", object_id=environment.pk,
                     environment=environment, details={"before": before, "after": changes})
        events.send_event_on_commit([events.FLEET_GROUP], "environment.changed", {"environment": environment.name})
    return environment


# --- versions and release creation ---------------------------------------------------------------------------


def version_bind(*, service: AgentService, tag: str, commit_sha: str, branch: str = "",
                 committed_at=None) -> Version:
    """The Version for this tag; one tag binds one commit (dev-latest moves and gets a row per commit).
    committed_at (when known) is kept on the version; an existing version without one gets it."""
    kind = parse_tag(tag).kind
    existing = Version.objects.filter(service=service, tag=tag)
    if tag in MOVING_TAGS:
        existing = existing.filter(commit_sha=commit_sha)
    version = existing.first()
    if version is not None:
        if version.commit_sha != commit_sha:
            raise TransitionNotAllowed(
                gettext("tag %(tag)s of %(service)s is already bound to commit %(commit_sha)s; a tag "
                        "binds exactly one commit, so tag the new commit with a new version (e.g. a -r1 "
                        "rebuild)") % {"tag": tag, "service": service.name, "commit_sha": version.commit_sha},
                field="commit",
            )
        if committed_at is not None and version.committed_at is None:
            Version.objects.filter(pk=version.pk, committed_at__isnull=True).update(committed_at=committed_at)
            version.committed_at = committed_at
        return version
    try:
        with transaction.atomic():
            return Version.objects.create(service=service, tag=tag, kind=kind, commit_sha=commit_sha, branch=branch,
                                          image_reference=service.image_for(tag), committed_at=committed_at)
    except IntegrityError:  # a concurrent request bound the tag first: answer as if we had lost the race above
        return version_bind(service=service, tag=tag, commit_sha=commit_sha, branch=branch,
                            committed_at=committed_at)


def version_record_image(*, release_id: int, reference: str = "", digest: str = "") -> None:
    """Record what the pipeline built and pushed on the release's version (image reference, registry digest)."""
    version_id = Release.objects.values_list("version_id", flat=True).get(pk=release_id)
    fields = {}
    if reference:
        fields["image_reference"] = reference[:400]
    if digest:
        fields["image_digest"] = digest[:100]
    if fields:
        Version.objects.filter(pk=version_id).update(**fields)


def release_create(*, actor: Actor, service: str, environment: str, tag: str, commit: str,
                   branch: str = "", idempotency_key: str = "", details: dict | None = None,
                   committed_at=None) -> Release:
    """A new release of (service, tag, commit) to an environment; its pipeline starts on commit.

    Refused (409 naming it) when the same version is already open in that environment. With an idempotency key
    (the API's Idempotency-Key header), the same request sent again returns the release the first one made;
    `release_create_idempotent` says which happened."""
    return release_create_idempotent(actor=actor, service=service, environment=environment, tag=tag, commit=commit,
                                     branch=branch, idempotency_key=idempotency_key, details=details,
                                     committed_at=committed_at)[0]


def release_create_idempotent(*, actor: Actor, service: str, environment: str, tag: str, commit: str,
                              branch: str = "", idempotency_key: str = "",
                              details: dict | None = None, committed_at=None) -> tuple[Release, bool]:
    """release_create, returning (release, replayed): replayed is True when the idempotency key found the
    release an earlier identical request made (nothing new is created or audited then)."""
    require_permission(actor, policy.RELEASE_CREATE)
    try:  # the names come in the request body: an unknown one is bad input (400), in the lookups' words
        service_obj, env_obj = service_by_name(service), environment_by_name(environment)
    except NotFound as unknown:
        raise InvalidInput(unknown.message, field=unknown.field) from None
    try:
        check_tag_environment(parse_tag(tag), env_obj.name)
        if branch:
            check_branch(branch, env_obj.name)
    except ConventionError as error:
        raise InvalidInput(error.message, field=error.field)

    with transaction.atomic():
        # The service lock (first in the lock order) serialises creations of one service's releases, so two
        # identical requests cannot both pass the duplicate check below.
        AgentService.objects.select_for_update(no_key=True).filter(pk=service_obj.pk).get()
        if idempotency_key and actor.user is not None:
            earlier = (Release.objects.select_related("service", "environment", "version")
                       .filter(started_by=actor.user, idempotency_key=idempotency_key).first())
            if earlier is not None:
                same = (earlier.service_id, earlier.environment_id, earlier.version.tag, earlier.version.commit_sha) \
                    == (service_obj.pk, env_obj.pk, tag, commit)
                if not same:
                    raise TransitionNotAllowed(
                        gettext("Idempotency-Key '%(idempotency_key)s' was already used for release "
                                "#%(earlier_id)s (%(service)s %(tag)s to %(environment)s); use a new key "
                                "for a different request") % {
                            "idempotency_key": idempotency_key[:60], "earlier_id": earlier.pk,
                            "service": earlier.service.name, "tag": earlier.version.tag,
                            "environment": earlier.environment.name},
                        field="Idempotency-Key", extra={"release_id": earlier.pk})
                return earlier, True
        duplicate = (Release.objects.select_related("version")
                     .filter(service=service_obj, environment=env_obj, version__tag=tag, version__commit_sha=commit,
                             status__in=sorted(OPEN_RELEASE_STATUSES)).order_by("-pk").first())
        if duplicate is not None:
            raise DuplicateRelease(
                gettext("release #%(duplicate_id)s of %(service)s %(tag)s (commit %(commit)s) to %(env)s "
                        "is already open (%(status)s); follow it instead of starting another") % {
                    "duplicate_id": duplicate.pk, "service": service_obj.name, "tag": tag, "commit": commit[:12],
                    "env": env_obj.name, "status": duplicate.status},
                extra={"release_id": duplicate.pk})
        if committed_at is not None and committed_at > timezone.now() + timedelta(minutes=5):
            raise InvalidInput(gettext("committed_at: must not be in the future (a commit's time, as git "
                                       "records it)"),
                               field="committed_at")
        version = version_bind(service=service_obj, tag=tag, commit_sha=commit, branch=branch,
                               committed_at=committed_at)
        release = Release.objects.create(
            service=service_obj, environment=env_obj, version=version, started_by=actor.user,
            previous_release=live_release(service_obj, env_obj), idempotency_key=idempotency_key[:200],
        )
        audit_record(actor=actor, action="release.create", object_type="release", object_id=release.pk,
                     release=release, to_state=release.status,
                     details={"tag": tag, "commit": commit, "branch": branch, **(details or {}),
                              **({"committed_at": committed_at.isoformat()} if committed_at else {})})
        _announce(release, from_status="", from_weight=0, actor=actor)  # pipelines start the build on this
    return release, False


def release_promote_next_env(*, actor: Actor, release_id: int, comment: str = "",
                             idempotency_key: str = "") -> tuple[Release, bool]:
    """Send the version of a release that is live (verified) in its environment on to the next environment of the
    path: a new release of the same (service, tag, commit), which reuses the pushed image (build once). Refused
    (409) with the reason when the path ends, the release is not verified or the conventions stop the tag there.
    Returns (new release, replayed) as release_create_idempotent does."""
    require_permission(actor, policy.RELEASE_CREATE)
    release = (Release.objects.select_related("service", "environment", "version")
               .filter(pk=release_id).first())
    if release is None:
        raise NotFound(gettext("no release with id %(release_id)s") % {"release_id": release_id})
    following, why_not = next_environment(release)
    if why_not:
        raise ActionBlocked(gettext("cannot promote release #%(release_id)s to the next environment: "
                                    "%(why_not)s") % {"release_id": release.pk, "why_not": why_not})
    version = release.version
    return release_create_idempotent(
        actor=actor, service=release.service.name, environment=following.name, tag=version.tag,
        commit=version.commit_sha, branch=version.branch, idempotency_key=idempotency_key,
        details={"promoted_from": release.pk, "from_environment": release.environment.name,
                 **({"comment": comment} if comment else {})})


# --- transitions ---------------------------------------------------------------------------------------------


def _announce(release: Release, *, from_status: str, from_weight: int, actor: Actor) -> None:
    """After commit: tell browsers (live event) and other apps (release_transitioned signal), and the approvers
    when the release now waits for them (approval_needed)."""
    _publish(release)
    kwargs = dict(release_id=release.pk, from_status=from_status, to_status=release.status, from_weight=from_weight,
                  to_weight=release.gray_weight, actor_name=actor.name)
    transaction.on_commit(lambda: release_transitioned.send_robust(sender=Release, **kwargs))
    with translation.override(settings.LANGUAGE_CODE):  # the reason travels to every subscriber: not the actor's
        if release.status == S.READY and release.environment.required_approvals:
            missing = approval_summary(release).missing
            if missing:
                _approval_needed(release, 0, missing, f"{release.version.tag} is built and waits for "
                                                      f"{missing_words(missing)} before promotion")
        elif release.status == S.GRAY and release.gray_weight != from_weight:
            step = next_step(release)
            missing = approval_summary(release, step=step).missing if step else {}
            if missing:
                _approval_needed(release, step, missing, f"the ramp waits at {release.gray_weight} %: "
                                                         f"waiting for {missing_words(missing)} to go to {step} %")


def _approval_needed(release: Release, step: int, missing: dict, reason: str) -> None:
    """The hook for notifications (signals.approval_needed), sent on commit; audited so the wait is visible."""
    kwargs = dict(release_id=release.pk, step_weight=step, missing=dict(missing), reason=reason)
    transaction.on_commit(lambda: approval_needed.send_robust(sender=Release, **kwargs))


def _publish(release: Release) -> None:
    events.send_event_on_commit(
        [events.FLEET_GROUP, events.release_group(release.pk)], "release.changed",
        {"release_id": release.pk, "service": release.service.name, "environment": release.environment.name,
         "status": release.status, "gray_weight": release.gray_weight},
    )


# --- lock order ------------------------------------------------------------------------------------------------
#
# Every path that locks more than one of these rows takes them in this order, and only in this order:
#
#   1. the service (AgentService)      4. the SLA gate's rows (GateRecord, samples, reports)
#   2. the release                     5. audit rows (inserted last; they only point at 1 and 2)
#   3. the release's pipeline and stages, or its deploy Rollout
#
# People (promote, pause, approve, ...), the pipeline worker, the deploy tasks and the SLA gate all start their
# transaction with release_lock() (the gate: sla.services._lock_release_rows, the same locks) before touching rows
# further down the list. A path may start lower in the list (a worker transition
# changes one release and no other: it locks the release without its service), but never goes back up.
#
# Service and release are locked FOR NO KEY UPDATE, not FOR UPDATE: they serialise every change to one service's
# releases, yet they do not conflict with the FOR KEY SHARE locks that foreign-key checks take implicitly when a
# row pointing at them is inserted (audit rows, approvals, pipelines, SLA samples). So an insert in another
# transaction never waits on a person's transition, and the implicit locks cannot reverse the order.


def release_lock(release_id: int, *, service: bool = True) -> Release:
    """Lock the release's service row, then the release, in the documented order. Inside transaction.atomic().

    service=False locks the release alone: for a change to this release only (a worker transition), which must
    not serialise with every other release of the service (100 pipelines of one service run side by side)."""
    if service:
        service_id = Release.objects.filter(pk=release_id).values_list("service_id", flat=True).first()
        if service_id is None:
            raise NotFound(gettext("no release with id %(release_id)s") % {"release_id": release_id})
        AgentService.objects.select_for_update(no_key=True).filter(pk=service_id).get()
    release = (Release.objects.select_for_update(no_key=True, of=("self",))
               .select_related("service", "environment", "version")
               .filter(pk=release_id).first())
    if release is None:
        raise NotFound(gettext("no release with id %(release_id)s") % {"release_id": release_id})
    return release


_lock = release_lock


# What a refusal says the person tried ("cannot promote release #3: ..."), in the reader's language.
_VERBS = {"promote": pgettext_lazy("refused action", "promote"),
          "approve": pgettext_lazy("refused action", "approve"),
          "reject": pgettext_lazy("refused action", "reject")}


def _verb(verb: str) -> str:
    return str(_VERBS.get(verb, verb))


def _check_edge(release: Release, to_status: str, verb: str) -> None:
    if to_status not in ALLOWED_TRANSITIONS[release.status]:
        words = {"verb": _verb(verb), "release_id": release.pk, "status": release.get_status_display().lower()}
        if not ALLOWED_TRANSITIONS[release.status]:
            raise TransitionNotAllowed(gettext("cannot %(verb)s release #%(release_id)s: it is %(status)s "
                                               "(a final state)") % words)
        raise TransitionNotAllowed(gettext("cannot %(verb)s release #%(release_id)s: it is %(status)s") % words)


def _move(release: Release, *, to_status: str, actor: Actor, action: str, reason: str = "",
          gray_weight: int | None = None, details: dict | None = None) -> Release:
    """Apply one transition: check it against the map, update, audit, publish on commit. Every status write of a
    release goes through here or through release_worker_transition, and both refuse an edge the map lacks."""
    from_status, from_weight = release.status, release.gray_weight
    if to_status not in ALLOWED_TRANSITIONS[from_status]:
        words = {"release_id": release.pk, "from_status": from_status, "to_status": to_status,
                 "allowed": ", ".join(sorted(ALLOWED_TRANSITIONS[from_status]))}
        if not ALLOWED_TRANSITIONS[from_status]:
            raise TransitionNotAllowed(gettext("release #%(release_id)s cannot go from %(from_status)s to "
                                               "%(to_status)s: %(from_status)s is a final state") % words,
                                       field="status")
        raise TransitionNotAllowed(gettext("release #%(release_id)s cannot go from %(from_status)s to %(to_status)s; "
                                           "from %(from_status)s it may go to %(allowed)s") % words, field="status")
    release.status = to_status
    release.status_reason = reason[:1000]
    release.status_changed_at = timezone.now()
    if gray_weight is not None:
        release.gray_weight = gray_weight
    release.save(update_fields=["status", "status_reason", "status_changed_at", "gray_weight"])
    audit_record(actor=actor, action=action, object_type="release", object_id=release.pk, release=release,
                 from_state=from_status, to_state=to_status, reason=reason,
                 details={"from_weight": from_weight, "to_weight": release.gray_weight, **(details or {})})
    _announce(release, from_status=from_status, from_weight=from_weight, actor=actor)
    return release


# --- the one rule for traffic moves (freeze windows, approvals, blocked images) ------------------------------


def traffic_check(*, move: str, service: AgentService, environment: Environment, tag: str = "",
                  release: Release | None = None) -> None:
    """Raise ActionBlocked (409, reason in words) unless `move` may happen now: every action that deploys or moves
    traffic calls this with the image it would send traffic to. The rules are policy.TRAFFIC_RULES; the reasoning
    (a read) is selectors.traffic_refusal, which pages use to grey buttons out with the same words."""
    refusal = traffic_refusal(move=move, service=service, environment=environment, tag=tag, release=release)
    if refusal:
        raise ActionBlocked(refusal)


def _check_canary_slot_free(release: Release) -> None:
    other = (Release.objects.filter(service=release.service, environment=release.environment,
                                    status__in=CANARY_STATUSES).exclude(pk=release.pk).select_related("version")
             .first())
    if other:
        raise ActionBlocked(
            gettext("release #%(other_id)s (%(tag)s) is already %(status)s at %(gray_weight)s %% in "
                    "%(environment)s; finish or roll it back first") % {
                "other_id": other.pk, "tag": other.version.tag, "status": other.status,
                "gray_weight": other.gray_weight, "environment": release.environment.name}
        )


def _go_live(release: Release, *, actor: Actor, action: str, reason: str) -> Release:
    current = live_release(release.service, release.environment)
    if current is not None and current.pk != release.pk:
        _move(current, to_status=S.SUPERSEDED, actor=actor, action="release.supersede",
              reason=f"replaced by {release.version.tag} (#{release.pk})", gray_weight=0)
        if release.previous_release_id != current.pk:
            release.previous_release = current
            release.save(update_fields=["previous_release"])
    return _move(release, to_status=S.LIVE, actor=actor, action=action, reason=reason, gray_weight=100)


def release_promote(*, actor: Actor, release_id: int, comment: str = "", full: bool = False,
                    expected_weight: int | None = None) -> Release:
    """Move a release one rung up its environment's gray ladder, or all the way to 100 % with full=True.

    From ready: checks approvals (protected environments), freeze windows and that no other canary is running,
    then starts the ramp at the first phase; with nothing live yet the release goes live directly.

    Two clicks on "promote" must not skip a phase. A caller that says which weight it saw (expected_weight, as the
    page does) is refused when the release has moved since; a caller that does not is refused when the release
    moved within the last ROLLGATE_PROMOTE_DEBOUNCE_SECONDS, so duplicate or concurrent requests make one step.
    """
    require_permission(actor, policy.RELEASE_PROMOTE)
    with transaction.atomic():
        release = _lock(release_id)
        if expected_weight is not None and expected_weight != release.gray_weight:
            raise TransitionNotAllowed(gettext("release #%(release_id)s is at %(gray_weight)s %%, not "
                                               "%(expected_weight)s %%: someone changed it meanwhile; "
                                               "look again before promoting") % {
                                           "release_id": release.pk, "gray_weight": release.gray_weight,
                                           "expected_weight": expected_weight})
        if expected_weight is None and release.status == S.GRAY:
            age = (timezone.now() - release.status_changed_at).total_seconds()
            if age < settings.ROLLGATE_PROMOTE_DEBOUNCE_SECONDS:
                raise TransitionNotAllowed(
                    gettext("release #%(release_id)s moved to %(gray_weight)s %% %(age)s s ago; to "
                            "promote again this soon, send expected_weight=%(gray_weight)s") % {
                        "release_id": release.pk, "gray_weight": release.gray_weight, "age": format(age, ".1f")}
                )
        if release.status == S.PAUSED:
            raise TransitionNotAllowed(gettext("release #%(release_id)s is paused; resume it before "
                                               "promoting") % {"release_id": release.pk})
        if release.status not in (S.READY, S.GRAY):
            _check_edge(release, S.LIVE, "promote")
            raise TransitionNotAllowed(gettext("cannot promote release #%(release_id)s: it is %(status)s") % {
                                           "release_id": release.pk, "status": release.status})
        traffic_check(move=policy.MOVE_PROMOTE, service=release.service, environment=release.environment,
                      tag=release.version.tag, release=release)
        if release.status == S.READY:
            _check_canary_slot_free(release)
        ladder = gray_ladder(release.environment)
        next_weights = [w for w in ladder if w > release.gray_weight]
        nothing_live = live_release(release.service, release.environment) is None
        straight_to_live = full or nothing_live or not next_weights or next_weights[0] >= 100
        if not (release.status == S.READY and nothing_live):  # a first release has no ramp to hold
            waiting = step_refusal(release, 100 if straight_to_live else next_weights[0])
            if waiting:
                raise ActionBlocked(gettext("release #%(release_id)s stays at %(gray_weight)s %%: "
                                            "%(waiting)s") % {
                                        "release_id": release.pk, "gray_weight": release.gray_weight,
                                        "waiting": waiting})
        if release.status == S.READY and release.environment.deploy_target != DeployTargetKind.NONE:
            # The canary must be running before it gets traffic: the deploy stage rolls it out and then calls
            # release_rollout_finished, which sets the weight below (or fails the release).
            release.rollout_weight = 100 if straight_to_live else next_weights[0]
            release.save(update_fields=["rollout_weight"])
            return _move(release, to_status=S.DEPLOYING, actor=actor, action="release.promote", reason=comment,
                         details={"rollout_weight": release.rollout_weight})
        if straight_to_live:
            why = comment or ("nothing is live yet in this environment" if nothing_live and not full else "")
            return _go_live(release, actor=actor, action="release.promote", reason=why)
        return _move(release, to_status=S.GRAY, actor=actor, action="release.promote", reason=comment,
                     gray_weight=next_weights[0])


def release_rollout_finished(*, release_id: int, succeeded: bool, reason: str = "",
                             actor_name: str = "deploy") -> bool:
    """The deploy target finished rolling out a deploying release: give it its traffic, or fail it.

    Compare-and-set semantics: returns False (and does nothing) when the release is no longer deploying, e.g.
    because someone rolled it back meanwhile."""
    actor = Actor.system(actor_name)
    with transaction.atomic():
        release = _lock(release_id)
        if release.status != S.DEPLOYING:
            return False
        if not succeeded:
            _move(release, to_status=S.FAILED, actor=actor, action="release.rollout_failed", reason=reason,
                  gray_weight=0)
            return True
        weight = release.rollout_weight or gray_ladder(release.environment)[0]
        if weight >= 100:
            _go_live(release, actor=actor, action="release.rollout_finished", reason=reason)
        else:
            _move(release, to_status=S.GRAY, actor=actor, action="release.rollout_finished", reason=reason,
                  gray_weight=weight)
        return True


def release_pause(*, actor: Actor, release_id: int, comment: str = "") -> Release:
    require_permission(actor, policy.RELEASE_PAUSE)
    with transaction.atomic():
        release = _lock(release_id)
        if release.status != S.GRAY:
            raise TransitionNotAllowed(gettext("cannot pause release #%(release_id)s: only a release in "
                                               "gray can be paused; it is %(status)s") % {
                                           "release_id": release.pk, "status": release.status})
        return _move(release, to_status=S.PAUSED, actor=actor, action="release.pause", reason=comment)


def release_resume(*, actor: Actor, release_id: int, comment: str = "") -> Release:
    require_permission(actor, policy.RELEASE_RESUME)
    with transaction.atomic():
        release = _lock(release_id)
        if release.status != S.PAUSED:
            raise TransitionNotAllowed(gettext("cannot resume release #%(release_id)s: it is %(status)s, "
                                               "not paused") % {"release_id": release.pk, "status": release.status})
        traffic_check(move=policy.MOVE_RESUME, service=release.service, environment=release.environment,
                      tag=release.version.tag, release=release)
        return _move(release, to_status=S.GRAY, actor=actor, action="release.resume", reason=comment)


def release_rollback(*, actor: Actor, release_id: int, comment: str = "", canary_only: bool = False) -> Release:
    """Take a release's traffic away. A canary drops to 0 %; a live release hands 100 % back to the one it
    replaced. Allowed during freeze windows: getting back to a known-good state is never frozen."""
    require_permission(actor, policy.RELEASE_ROLLBACK)
    with transaction.atomic():
        release = _lock(release_id)
        if canary_only and release.status not in CANARY_STATUSES:
            # The SLA gate judged a canary; if someone promoted it to live meanwhile, that decision stands.
            raise TransitionNotAllowed(gettext("release #%(release_id)s is %(status)s, no longer a canary") % {
                                           "release_id": release.pk, "status": release.status})
        if release.status in CANARY_STATUSES:
            return _move(release, to_status=S.ROLLED_BACK, actor=actor, action="release.rollback", reason=comment,
                         gray_weight=0)
        if release.status != S.LIVE:
            raise TransitionNotAllowed(
                gettext("cannot roll back release #%(release_id)s: it is %(status)s; only a canary or the "
                        "live release can be rolled back") % {"release_id": release.pk, "status": release.status}
            )
        previous = release.previous_release
        if previous is None or previous.status != S.SUPERSEDED:
            raise TransitionNotAllowed(gettext("cannot roll back release #%(release_id)s: there is no "
                                               "earlier live release in %(environment)s to return to") % {
                                           "release_id": release.pk, "environment": release.environment.name})
        previous = Release.objects.select_for_update(no_key=True, of=("self",)).select_related("version").get(
            pk=previous.pk)
        traffic_check(move=policy.MOVE_ROLLBACK, service=release.service, environment=release.environment,
                      tag=previous.version.tag)
        _move(release, to_status=S.ROLLED_BACK, actor=actor, action="release.rollback", reason=comment,
              gray_weight=0, details={"restored_release": previous.pk})
        _move(previous, to_status=S.LIVE, actor=actor, action="release.restore", gray_weight=100,
              reason=f"restored by rollback of {release.version.tag} (#{release.pk})")
        return release


def release_approve(*, actor: Actor, release_id: int, comment: str = "", evidence_digest: str = "") -> Approval:
    """Approve a release before promotion, or, for a canary waiting at a gray step, the move to that rung.
    The approval stores the evidence shown (releases.selectors.approval_evidence); `evidence_digest` is the digest
    of what the approver's form showed: refused (409) when the evidence has changed since."""
    return _decide(actor=actor, release_id=release_id, decision=ApprovalDecision.APPROVED, comment=comment,
                   shown_digest=evidence_digest)


def release_reject(*, actor: Actor, release_id: int, comment: str, evidence_digest: str = "") -> Approval:
    if not comment.strip():
        raise InvalidInput(gettext("comment: a rejection needs a reason in the comment"), field="comment")
    return _decide(actor=actor, release_id=release_id, decision=ApprovalDecision.REJECTED, comment=comment,
                   shown_digest=evidence_digest)


def _decide(*, actor: Actor, release_id: int, decision: str, comment: str, shown_digest: str = "") -> Approval:
    if actor.user is None:
        raise Forbidden(gettext("approvals are given by people, not by system components"))
    permission = policy.RELEASE_APPROVE if decision == ApprovalDecision.APPROVED else policy.RELEASE_REJECT
    require_permission(actor, permission)
    verb = "approve" if decision == ApprovalDecision.APPROVED else "reject"
    with transaction.atomic():
        release = _lock(release_id)
        env = release.environment
        step = next_step(release)
        if release.status in (S.GRAY, S.PAUSED):
            if not step:
                raise TransitionNotAllowed(gettext("cannot %(verb)s release #%(release_id)s: it is "
                                                   "%(status)s at %(gray_weight)s %% and the next rung "
                                                   "needs no approval") % {
                                               "verb": _verb(verb), "release_id": release.pk, "status": release.status,
                                               "gray_weight": release.gray_weight})
            required = step_requirements(env, step)
            what = gettext("going to %(step)s %%") % {"step": step}
        else:
            required = env.required_approvals or {}
            what = gettext("promotion")
            if not required:
                raise TransitionNotAllowed(gettext("%(env)s needs no approvals; nothing to %(verb)s") % {
                                               "env": env.name, "verb": _verb(verb)})
            if release.status not in OPEN_FOR_APPROVAL:
                raise TransitionNotAllowed(gettext("cannot %(verb)s release #%(release_id)s: it is "
                                                   "%(status)s; approvals are given before promotion or, "
                                                   "in gray, before a step that needs them") % {
                                               "verb": _verb(verb), "release_id": release.pk, "status": release.status})
        if release.started_by_id == actor.user.pk:
            raise Forbidden(gettext("you started release #%(release_id)s; someone else must %(verb)s it") % {
                                "release_id": release.pk, "verb": _verb(verb)})
        if release.approvals.filter(user=actor.user, step_weight=step, stale_at__isnull=True).exists():
            raise TransitionNotAllowed(gettext("you already decided on %(what)s of release #%(release_id)s") % {
                                           "what": what, "release_id": release.pk})
        roles = [r for r in required if r in policy.roles_of(actor.user)]
        if not roles:
            raise Forbidden(gettext("%(env)s takes approvals for %(what)s from %(required)s; you are "
                                    "%(roles)s") % {
                                "env": env.name, "what": what, "required": ', '.join(required),
                                "roles": ', '.join(sorted(policy.roles_of(actor.user)))})
        evidence = approval_evidence(release)
        digest = evidence_digest(evidence)
        if shown_digest and shown_digest != digest:
            raise TransitionNotAllowed(gettext("the evidence for release #%(release_id)s changed since "
                                               "your form showed it (a new scan, SLA snapshot or values "
                                               "change): look at it again before you %(verb)s") % {
                                           "release_id": release.pk, "verb": _verb(verb)}, field="evidence_digest")
        missing = approval_summary(release, step=step).missing
        role = next((r for r in roles if r in missing), roles[0])
        approval = Approval.objects.create(release=release, user=actor.user, role=role, decision=decision,
                                           comment=comment, step_weight=step, evidence=evidence,
                                           evidence_digest=digest)
        audit_record(actor=actor, action=f"release.{verb}", object_type="release", object_id=release.pk,
                     release=release, from_state=release.status, reason=comment,
                     details={"role": role, "step_weight": step, "evidence_digest": digest})
        if decision == ApprovalDecision.REJECTED and not step:
            _move(release, to_status=S.REJECTED, actor=actor, action="release.rejected", reason=comment)
        elif decision == ApprovalDecision.REJECTED and release.status == S.GRAY:
            _move(release, to_status=S.PAUSED, actor=actor, action="release.pause",
                  reason=f"{actor.name} rejected going to {step} %: {comment}")
        else:
            _publish(release)
    return approval


def approvals_mark_stale(*, service_id: int, tag: str, reason: str, after_position: int | None = None,
                         exclude_release_id: int | None = None, actor_name: str = "evidence") -> int:
    """Later evidence changed the picture (a new SLA snapshot blocks, a rescan found a Critical): the approvals
    of the version's releases still waiting or ramping (in environments after `after_position`, if given) no
    longer count; each release says so (audit row, live event) and asks its approvers again. Returns how many.

    Called after the caller's own transaction has committed: each release is locked on its own."""
    actor = Actor.system(actor_name)
    targets = (Release.objects.filter(service_id=service_id, version__tag=tag,
                                      status__in=sorted(OPEN_FOR_APPROVAL | CANARY_STATUSES))
               .values_list("pk", flat=True))
    if after_position is not None:
        targets = targets.filter(environment__position__gt=after_position)
    if exclude_release_id is not None:
        targets = targets.exclude(pk=exclude_release_id)
    marked = 0
    for release_id in list(targets):
        with transaction.atomic():
            release = _lock(release_id)
            count = release.approvals.filter(stale_at__isnull=True, decision=ApprovalDecision.APPROVED).update(
                stale_at=timezone.now(), stale_reason=reason[:1000])
            if not count:
                continue
            marked += count
            audit_record(actor=actor, action="release.approvals_stale", object_type="release", object_id=release.pk,
                         release=release, from_state=release.status, to_state=release.status, reason=reason,
                         details={"stale_approvals": count})
            _publish(release)
            step = next_step(release)
            missing = approval_summary(release, step=step).missing
            if missing:
                _approval_needed(release, step, missing, f"approvals went stale: {reason}"[:1000])
    return marked


def release_worker_transition(*, release_id: int, from_statuses: set[str], to_status: str, actor_name: str,
                              action: str, reason: str = "", gray_weight: int | None = None,
                              actor: Actor | None = None) -> bool:
    """Compare-and-set for workers (pipeline stages, the SLA gate). Returns False when another worker or person
    moved the release first; the caller then stops quietly."""
    illegal = sorted(s for s in from_statuses if to_status not in ALLOWED_TRANSITIONS[s])
    if illegal:
        raise TransitionNotAllowed(gettext("%(action)s: %(illegal)s -> %(to_status)s is not in the "
                                           "transition map") % {
                                       "action": action, "illegal": ', '.join(illegal), "to_status": to_status},
                                   field="status")
    with transaction.atomic():
        try:
            # This release only: no other release's state is read or changed, so the service is not locked.
            release = release_lock(release_id, service=False)
        except NotFound:
            return False
        if release.status not in from_statuses:
            return False  # another worker or a person moved it first
        actor = actor or Actor.system(actor_name)  # a person may start a worker transition (pipeline retry)
        _move(release, to_status=to_status, actor=actor, action=action, reason=reason, gray_weight=gray_weight)
    return True


# --- SLA gate (sla app): a system pause that acts at most once per evaluation -------------------------------


def release_gate_pause(*, release_id: int, expected_weight: int, reason: str, actor_name: str = "sla-gate") -> bool:
    """Pause a gray release for a worker (the SLA gate). Compare-and-set: returns False and does nothing when
    the release is no longer in gray at `expected_weight` (someone moved it since the evaluation)."""
    with transaction.atomic():
        release = _lock(release_id)
        if release.status != S.GRAY or release.gray_weight != expected_weight:
            return False
        _move(release, to_status=S.PAUSED, actor=Actor.system(actor_name), action="release.pause", reason=reason)
        return True
