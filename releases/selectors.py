"""Reads of the release domain. Lists are filtered by what the user may see (deny by default)."""
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, F, IntegerField, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from releases import audit_chain, filters, policy
from releases.choices import (AWAITING_APPROVAL, CANARY_STATUSES, OPEN_FOR_APPROVAL, OPEN_RELEASE_STATUSES,
                              ApprovalDecision, ReleaseStatus)
from releases.conventions import ConventionError, check_branch, check_tag_environment, parse_tag
from releases.errors import NotFound
from releases.freeze import active_freeze, describe
from releases.keyset import KeysetPage, keyset_page
from releases.models import AgentService, Approval, AuditEvent, Environment, Release, Version

S = ReleaseStatus
log = logging.getLogger(__name__)


# --- lookups by name: one helper each, one error shape ------------------------------------------------------


def _known(names) -> str:
    return ", ".join(names) or "none yet"


def service_by_name(name: str) -> AgentService:
    """The service called ``name``; an unknown name is NotFound (404) naming the known services."""
    found = AgentService.objects.filter(name=name).first()
    if found is None:
        known = _known(AgentService.objects.order_by("name").values_list("name", flat=True)[:50])
        raise NotFound(gettext("no service named '%(name)s'; known services: %(known)s") % {
                           "name": str(name)[:80], "known": known}, field="service")
    return found


def environment_by_name(name: str) -> Environment:
    """The environment called ``name``; an unknown name is NotFound (404) naming the known environments."""
    found = Environment.objects.filter(name=name).first()
    if found is None:
        known = _known(Environment.objects.order_by("position", "name").values_list("name", flat=True))
        raise NotFound(gettext("no environment named '%(name)s'; environments: %(known)s") % {
                           "name": str(name)[:80], "known": known}, field="environment")
    return found


def live_release(service: AgentService, environment: Environment) -> Release | None:
    return (Release.objects.filter(service=service, environment=environment, status=S.LIVE)
            .select_related("version").first())


def canary_release(service: AgentService, environment: Environment) -> Release | None:
    return (Release.objects.filter(service=service, environment=environment, status__in=CANARY_STATUSES)
            .select_related("version").first())


def gray_ladder(environment: Environment) -> list[int]:
    weights = [phase.weight for phase in environment.gray_phases.all()]
    return weights or list(settings.ROLLGATE_DEFAULT_GRAY_PHASES)


@dataclass
class ApprovalSummary:
    required: dict[str, int]
    approved: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    rejected_by: str = ""


def step_requirements(environment: Environment, weight: int) -> dict[str, int]:
    """Approvals per role needed before the ramp moves to `weight` % ({} when that rung needs none)."""
    return dict((environment.gray_step_approvals or {}).get(str(weight), {}))


def approval_summary(release: Release, step: int = 0) -> ApprovalSummary:
    """Who approved, who must still approve, who rejected: before promotion (step 0) or at the gray step `step`.
    Stale approvals do not count."""
    needed = release.environment.required_approvals if step == 0 else step_requirements(release.environment, step)
    required = dict(sorted((needed or {}).items()))
    summary = ApprovalSummary(required=required)
    for approval in release.approvals.filter(step_weight=step, stale_at__isnull=True).select_related("user"):
        if approval.decision == ApprovalDecision.REJECTED:
            summary.rejected_by = approval.user.get_username()
        else:
            summary.approved.setdefault(approval.role, []).append(approval.user.get_username())
    for role, count in required.items():
        have = len(summary.approved.get(role, []))
        if have < count:
            summary.missing[role] = count - have
    return summary


def missing_words(missing: dict[str, int]) -> str:
    """{"qa": 1} -> "qa's approval"; {"qa": 2, "release_manager": 1} -> "approvals from 2 qa, 1 release_manager"."""
    if len(missing) == 1 and next(iter(missing.values())) == 1:
        return gettext("%(role)s's approval") % {"role": next(iter(missing))}
    return gettext("approvals from %(missing)s") % {
        "missing": ", ".join(f"{count} {role}" for role, count in sorted(missing.items()))}


def next_step(release: Release) -> int:
    """The rung (percent) a canary's ramp moves to next when that rung requires approvals, else 0."""
    if release.status not in (S.GRAY, S.PAUSED) or not release.environment.gray_step_approvals:
        return 0
    following = [w for w in gray_ladder(release.environment) if w > release.gray_weight] or [100]
    return following[0] if step_requirements(release.environment, following[0]) else 0


def step_refusal(release: Release, target_weight: int) -> str:
    """Why the ramp may not move from its weight to `target_weight` because a gray step on the way lacks its
    approvals, e.g. "waiting for qa's approval to go to 50 %"; "" when nothing holds it."""
    steps = sorted(int(w) for w in (release.environment.gray_step_approvals or {}))
    for weight in steps:
        if release.gray_weight < weight <= target_weight:
            summary = approval_summary(release, step=weight)
            if summary.rejected_by:
                return gettext("%(who)s rejected going to %(weight)s %%") % {"who": summary.rejected_by,
                                                                            "weight": weight}
            if summary.missing:
                return gettext("waiting for %(missing)s to go to %(weight)s %%") % {
                    "missing": missing_words(summary.missing), "weight": weight}
    return ""


# --- approval evidence: what an approver is shown, and what the approval stores -----------------------------

# Other apps add what they know about a release (pipelines: the scan; sla: the previous environment's verdict and
# snapshot; deploy: the values diff against what runs now) by registering a reader here when they start:
# name -> callable(release) -> dict of JSON values. Registration instead of an import keeps releases importing no
# other app. Readers only read the database (no network), and return the same dict for the same state: the digest
# tells an approver's form that the evidence changed since it was shown.
EVIDENCE_SOURCES: dict = {}


def approval_evidence(release: Release) -> dict:
    evidence = {}
    for name, source in sorted(EVIDENCE_SOURCES.items()):
        try:
            evidence[name] = source(release)
        except Exception as error:  # one source failing must not hide the others, nor the approval form
            log.exception("approval evidence %s of release %s failed", name, release.pk)
            evidence[name] = {"error": f"could not be read: {type(error).__name__}"}
    return evidence


def evidence_digest(evidence: dict) -> str:
    return hashlib.sha256(json.dumps(evidence, sort_keys=True, default=str).encode()).hexdigest()


# --- the one rule for traffic moves: the reasoning (services.traffic_check raises with it) --------------------

# Other apps that keep their own list of blocked versions (routing) register a reader here when they start:
# callable(service, environment) -> {tag: reason}. Registration instead of an import keeps releases importing
# no other app.
BLOCKED_VERSION_SOURCES: list = []


def blocked_image_reason(service: AgentService, environment: Environment, tag: str) -> str:
    """Why this image may never be deployed or routed to again, or "" when it may."""
    blocked = (Release.objects.filter(service=service, version__tag=tag, status=S.BLOCKED)
               .select_related("environment").first())
    if blocked is not None:
        words = {"release_id": blocked.pk, "environment": blocked.environment.name, "why": blocked.status_reason}
        if blocked.status_reason:
            return gettext("release #%(release_id)s was blocked in %(environment)s: %(why)s") % words
        return gettext("release #%(release_id)s was blocked in %(environment)s") % words
    for source in BLOCKED_VERSION_SOURCES:
        reason = source(service, environment).get(tag)
        if reason is not None:
            return gettext("blocked in routing in %(environment)s: %(why)s") % {"environment": environment.name,
                                                                                "why": reason}
    return ""


def went_live(service: AgentService, environment: Environment, tag: str) -> bool:
    """The image was (or is) the stable version here: it passed this environment's approvals back then."""
    return Release.objects.filter(service=service, environment=environment, version__tag=tag,
                                  status__in=(S.LIVE, S.SUPERSEDED)).exists()


def traffic_refusal(*, move: str, service: AgentService, environment: Environment, tag: str = "",
                    release: Release | None = None) -> str:
    """Why `move` (policy.TRAFFIC_RULES) may not happen now, in words, or "" when it may."""
    rule = policy.TRAFFIC_RULES[move]
    if tag and not rule.may_use_blocked_image:
        why = blocked_image_reason(service, environment, tag)
        if why:
            return gettext("cannot %(move)s: %(service)s %(tag)s is blocked (%(why)s); nothing deploys or routes "
                           "to a blocked image again: build a new version") % {
                "move": move, "service": service.name, "tag": tag, "why": why}
    window = active_freeze(environment.freeze_windows, timezone.now())
    if window and rule.freeze != policy.FREEZE_ALLOWED:
        if rule.freeze == policy.FREEZE_REFUSED or not (tag and went_live(service, environment, tag)):
            allowed = ", ".join(r.label.split(" (")[0] for r in policy.TRAFFIC_RULES.values()
                                if r.freeze == policy.FREEZE_ALLOWED)
            what = gettext("%(move)s waits") % {"move": move} if rule.freeze == policy.FREEZE_REFUSED else (
                gettext("%(move)s may only return to a version that was live here, and %(tag)s never was") % {
                    "move": move, "tag": tag})
            return gettext("%(environment)s is %(window)s: %(what)s; allowed now: %(allowed)s") % {
                "environment": environment.name, "window": describe(window), "what": what, "allowed": allowed}
    if rule.approvals == policy.APPROVALS_RELEASE and release is not None:
        summary = approval_summary(release)
        if summary.missing:
            missing = ", ".join(f"{count} {role}" for role, count in sorted(summary.missing.items()))
            return gettext("%(environment)s is protected: %(move)s needs approval from %(missing)s") % {
                "environment": environment.name, "move": move, "missing": missing}
        if move == policy.MOVE_CUT_OVER and release.status in CANARY_STATUSES:
            # All new traffic to the canary passes every gray step still ahead of it.
            waiting = step_refusal(release, 100)
            if waiting:
                return gettext("cannot %(move)s: %(waiting)s") % {"move": move, "waiting": waiting}
    if rule.approvals == policy.APPROVALS_WENT_LIVE and environment.required_approvals and tag:
        if not went_live(service, environment, tag):
            return gettext("%(environment)s is protected: %(tag)s never went live here, so it never had its "
                           "approvals; release it (with approvals) instead of rolling back to it") % {
                "environment": environment.name, "tag": tag}
    return ""


# --- the promotion path: dev -> test -> staging -> prod (Environment.position) -------------------------------

PROMOTABLE_TO_NEXT_ENV = frozenset({S.LIVE, S.SUPERSEDED})


def next_environment(release: Release) -> tuple[Environment | None, str]:
    """The environment after the release's own on the promotion path, and why the release may not go there now
    ("" when it may): it must be live (or have been live, verified) where it is, the path must go on, and the
    tag and branch conventions must allow the next environment (a -rcN candidate stops at staging)."""
    here = release.environment
    following = Environment.objects.filter(position__gt=here.position).order_by("position", "name").first()
    if following is None:
        return None, gettext("%(environment)s is the last environment on the path; there is nowhere further to "
                             "promote") % {"environment": here.name}
    if release.status not in PROMOTABLE_TO_NEXT_ENV:
        return following, gettext("release #%(release_id)s is %(status)s in %(environment)s; only a release that "
                                  "is live there (verified) goes on to %(following)s") % {
            "release_id": release.pk, "status": release.get_status_display().lower(), "environment": here.name,
            "following": following.name}
    version = release.version
    try:
        check_tag_environment(parse_tag(version.tag), following.name)
        if version.branch:
            check_branch(version.branch, following.name)
    except ConventionError as error:
        return following, error.message
    why = blocked_image_reason(release.service, following, version.tag)
    if why:
        return following, f"{release.service.name} {version.tag} is blocked ({why})"
    return following, ""


COMMIT_PATTERN = "^[0-9a-f]{40}$"


def release_create_problems(*, service: str, environment: str, tag: str, commit: str,
                            branch: str = "") -> dict[str, str]:
    """What release_create would refuse, field by field, in its words (the start-a-release page checks as you
    type): unknown service or environment, a tag or branch outside the conventions, a malformed commit, the same
    version already open there, a tag already bound to another commit. Empty fields are not judged yet."""
    problems: dict[str, str] = {}
    service_obj = env_obj = None
    if service:
        try:
            service_obj = service_by_name(service)
        except NotFound as error:
            problems["service"] = error.message
    if environment:
        try:
            env_obj = environment_by_name(environment)
        except NotFound as error:
            problems["environment"] = error.message
    parsed = None
    if tag:
        try:
            parsed = parse_tag(tag)
            if env_obj is not None:
                check_tag_environment(parsed, env_obj.name)
        except ConventionError as error:
            problems["tag"] = error.message
    if branch and env_obj is not None:
        try:
            check_branch(branch, env_obj.name)
        except ConventionError as error:
            problems["branch"] = error.message
    if commit and not re.fullmatch(COMMIT_PATTERN, commit):
        problems["commit"] = "must be the full 40-character lowercase hex git commit sha"
    if service_obj is not None and parsed is not None and "commit" not in problems and commit:
        bound = Version.objects.filter(service=service_obj, tag=tag).exclude(commit_sha=commit).first()
        if bound is not None and tag != "dev-latest":
            problems["commit"] = (f"tag {tag} of {service_obj.name} is already bound to commit {bound.commit_sha}; "
                                  f"a tag binds exactly one commit")
        elif env_obj is not None:
            open_ = (Release.objects.filter(service=service_obj, environment=env_obj, version__tag=tag,
                                            version__commit_sha=commit, status__in=sorted(OPEN_RELEASE_STATUSES))
                     .order_by("-pk").first())
            if open_ is not None:
                problems["tag"] = (f"release #{open_.pk} of {service_obj.name} {tag} to {env_obj.name} is already "
                                   f"open ({open_.status}); follow it instead of starting another")
    return problems


def release_list(*, user, service: str = "", environment: str = "", status: str = "", tag: str = "") -> QuerySet:
    if not policy.can(user, policy.RELEASE_VIEW):
        return Release.objects.none()
    qs = Release.objects.select_related("service", "environment", "version", "started_by",
                                        "previous_release__version")
    return filters.apply(filters.ReleaseFilter, qs,
                         {"service": service, "environment": environment, "status": status, "tag": tag})


def release_get(*, user, release_id: int) -> Release | None:
    return release_list(user=user).filter(pk=release_id).first()


def audit_list(*, user, release_id: int | None = None, actor: str = "", action: str = "", service: str = "",
               environment: str = "", since=None, until=None) -> QuerySet:
    if not policy.can(user, policy.AUDIT_VIEW):
        return AuditEvent.objects.none()
    # prior_hash: the hash of the row just before each one, so the API can flag rows that break the chain.
    prior = AuditEvent.objects.filter(id__lt=OuterRef("id")).order_by("-id").values("row_hash")[:1]
    qs = AuditEvent.objects.select_related("release", "service", "environment").annotate(prior_hash=Subquery(prior))
    return filters.apply(filters.AuditEventFilter, qs,
                         {"release_id": release_id, "actor": actor, "action": action, "service": service,
                          "environment": environment, "since": since, "until": until})


AUDIT_CHAIN_CACHE_SECONDS = 60


def audit_chain_state(*, user) -> audit_chain.ChainState | None:
    """The whole chain verified (as `manage.py audit_verify` does), at most once a minute for the audit page."""
    if not policy.can(user, policy.AUDIT_VIEW):
        return None
    state = cache.get("audit-chain-state")
    if state is None:
        state = audit_chain.verify(AuditEvent.objects.all())
        cache.set("audit-chain-state", state, AUDIT_CHAIN_CACHE_SECONDS)
    return state


def release_is_rollbackable(release: Release) -> bool:
    if release.status in CANARY_STATUSES:
        return True
    return (release.status == S.LIVE and release.previous_release_id is not None
            and release.previous_release.status == S.SUPERSEDED)


def release_record(release: Release) -> dict:
    """The release in the design document's record shape (chapter 7)."""
    previous = release.previous_release
    return {
        "agent_name": release.service.name,
        "version": release.version.tag,
        "tag": f"{release.service.name}-{release.environment.name}",  # the agent group, as in "gpt4-infer-prod"
        "publisher": release.started_by.get_username(),
        "status": release.status,
        "prev_version": previous.version.tag if previous else None,
        "gray": release.status in CANARY_STATUSES,
        "rollbackable": release_is_rollbackable(release),
        "created_at": release.created_at.isoformat().replace("+00:00", "Z"),
    }


@dataclass(frozen=True)
class ActionState:
    allowed: bool
    reason: str = ""


def release_actions(*, user, release: Release) -> dict[str, ActionState]:
    """What this user can do to this release now, and why not: the page greys buttons out with the reason."""
    status = release.status
    states: dict[str, ActionState] = {}

    def check(name: str, permission: str, state_ok: bool, state_reason: str, extra: str = "") -> None:
        decision = policy.can(user, permission)
        if not decision:
            states[name] = ActionState(False, decision.reason)
        elif not state_ok:
            states[name] = ActionState(False, state_reason)
        elif extra:
            states[name] = ActionState(False, extra)
        else:
            states[name] = ActionState(True)

    env = release.environment
    window = active_freeze(env.freeze_windows, timezone.now())
    frozen = gettext("%(environment)s is %(window)s") % {"environment": env.name, "window": describe(window)} \
        if window else ""
    step = next_step(release)
    summary = approval_summary(release, step=step)
    missing = ""
    if status == S.READY and summary.missing:
        missing = gettext("waiting for approval from %(missing)s") % {
            "missing": ", ".join(f"{n} {r}" for r, n in summary.missing.items())}
    if status == S.GRAY:
        following = [w for w in gray_ladder(env) if w > release.gray_weight] or [100]
        missing = step_refusal(release, following[0])
    promotable = status in (S.READY, S.GRAY)
    status_words = release.get_status_display().lower()
    why_not = gettext("paused: resume first") if status == S.PAUSED else \
        gettext("release is %(status)s") % {"status": status_words}
    if promotable or status == S.PAUSED:
        move = policy.MOVE_PROMOTE if promotable else policy.MOVE_RESUME
        # Freeze window or blocked image in the rule's words (missing approvals keep their own wording below).
        frozen = traffic_refusal(move=move, service=release.service, environment=env, tag=release.version.tag)
    check("promote", policy.RELEASE_PROMOTE, promotable, why_not, frozen or missing)
    full_missing = step_refusal(release, 100) if status in (S.READY, S.GRAY) and live_release(
        release.service, env) not in (None, release) else ""
    check("promote_full", policy.RELEASE_PROMOTE, promotable, why_not, frozen or missing or full_missing)
    check("pause", policy.RELEASE_PAUSE, status == S.GRAY,
          gettext("only a release in gray can be paused; it is %(status)s") % {"status": status_words})
    check("resume", policy.RELEASE_RESUME, status == S.PAUSED,
          gettext("release is %(status)s, not paused") % {"status": status_words}, frozen)
    check("rollback", policy.RELEASE_ROLLBACK, release_is_rollbackable(release),
          gettext("release is %(status)s: nothing to roll back") % {"status": status_words})
    approvable = bool(summary.required) and (status in OPEN_FOR_APPROVAL or bool(step))
    own = release.started_by_id == getattr(user, "pk", None)
    already = release.approvals.filter(user_id=getattr(user, "pk", None), step_weight=step,
                                       stale_at__isnull=True).exists()
    why_approve = gettext("no approvals needed here") if not summary.required else \
        gettext("release is %(status)s") % {"status": status_words}
    roles_here = [role for role in summary.required if role in policy.roles_of(user)]
    what = gettext("going to %(step)s %%") % {"step": step} if step else gettext("promotion")
    extra = gettext("you started this release") if own else (gettext("you already decided") if already else (
        gettext("%(what)s takes approvals from %(roles)s") % {"what": what, "roles": ", ".join(summary.required)}
        if summary.required and not roles_here else ""))
    check("approve", policy.RELEASE_APPROVE, approvable, why_approve, extra)
    check("reject", policy.RELEASE_REJECT, approvable, why_approve, extra)
    following, why_not_next = next_environment(release)
    check("promote_next_env", policy.RELEASE_CREATE, following is not None and not why_not_next, why_not_next)
    return states


@dataclass(slots=True, eq=False)
class FleetRelease:
    """What a fleet cell shows of a release: thousands of these are read per page, so not a full model row."""

    pk: int
    service_id: int
    environment: Environment
    status: str
    gray_weight: int
    tag: str


@dataclass
class FleetCell:
    live: FleetRelease | None = None
    canary: FleetRelease | None = None
    latest: FleetRelease | None = None  # newest release of any status, for "what happened last"


@dataclass
class FleetRow:
    service: AgentService
    cells: list[FleetCell]


FLEET_PAGE_SIZE = 50
FLEET_ATTENTION = frozenset({S.CI_FAILED, S.FAILED, S.BLOCKED, S.PAUSED})


@dataclass
class FleetPage:
    environments: list
    rows: list
    total: int  # services matching the filters
    number: int
    pages: int


def _newest_of_pair():
    """A release that is the newest one of its (service, environment) pair: no later release exists."""
    newer = Release.objects.filter(service_id=OuterRef("service_id"), environment_id=OuterRef("environment_id"),
                                   pk__gt=OuterRef("pk"))
    return ~Exists(newer)


def _fleet_services(*, environments, service: str, status: str) -> QuerySet:
    """The services the fleet lists, filtered in the database. A status matches what a cell shows: the live or
    the canary release, or the newest release of the pair."""
    services_qs = AgentService.objects.only("id", "name").order_by("name")
    if service:
        services_qs = services_qs.filter(name__icontains=service)
    if status:
        shown = Release.objects.filter(service_id=OuterRef("pk"), status=status, environment__in=environments)
        if status != S.LIVE and status not in CANARY_STATUSES:
            shown = shown.filter(_newest_of_pair())
        services_qs = services_qs.filter(Exists(shown))
    return services_qs


def fleet_overview(*, user, service: str = "", environment: str = "", status: str = "", page: int = 1,
                   size: int | None = None) -> FleetPage:
    """One page of services x environments, in the same few queries whatever the fleet size: the services
    (filtered and paged in the database), their total, and what the page's cells show."""
    if not policy.can(user, policy.RELEASE_VIEW):
        return FleetPage([], [], 0, 1, 1)
    size = size or FLEET_PAGE_SIZE
    environments = list(Environment.objects.all())
    if environment:
        environments = [e for e in environments if e.name == environment]
    services_qs = _fleet_services(environments=environments, service=service, status=status)
    total = services_qs.count()
    pages = max(1, -(-total // size))
    number = min(max(1, page), pages)
    service_list = list(services_qs[(number - 1) * size: number * size])
    env_index = {e.pk: i for i, e in enumerate(environments)}
    cells = {s.pk: [FleetCell() for _ in environments] for s in service_list}
    # One query for what the cells show: the live and canary releases, and the newest release of each pair, for
    # this page's services only. Plain tuples, not model rows.
    scope = Release.objects.filter(environment__in=environments, service__in=[s.pk for s in service_list])
    latest_ids = (scope.order_by().values("service_id", "environment_id").annotate(last=Max("id"))
                  .values_list("last", flat=True))
    shown = list(scope.filter(Q(status__in=[S.LIVE, *CANARY_STATUSES]) | Q(pk__in=latest_ids)).order_by()
                 .values_list("id", "service_id", "environment_id", "status", "gray_weight", "version_id"))
    # Tags by primary key in a query of their own: joined, PostgreSQL misjudged the few rows and hashed the whole
    # version table (13 ms at 5 000 services, 0.3 ms this way).
    tags = dict(Version.objects.filter(pk__in={row[5] for row in shown}).values_list("id", "tag"))
    env_by_id = {e.pk: e for e in environments}
    for pk, service_id, environment_id, status_, weight, version_id in shown:
        release = FleetRelease(pk, service_id, env_by_id[environment_id], status_, weight, tags[version_id])
        cell = cells[service_id][env_index[environment_id]]
        if status_ == S.LIVE:
            cell.live = release
        elif status_ in CANARY_STATUSES:
            cell.canary = release
        if cell.latest is None or pk > cell.latest.pk:  # the newest of the pair is always among these
            cell.latest = release
    rows = [FleetRow(service=s, cells=cells[s.pk]) for s in service_list]
    return FleetPage(environments, rows, total, number, pages)


def _fleet_counts(environment: str) -> dict[str, int]:
    scope = Release.objects.all()
    if environment:
        scope = scope.filter(environment__name=environment)
    counted = scope.filter(Q(status__in=sorted(CANARY_STATUSES | OPEN_FOR_APPROVAL | FLEET_ATTENTION)))
    return counted.aggregate(
        canaries=Count("id", filter=Q(status__in=sorted(CANARY_STATUSES))),
        waiting=Count("id", filter=Q(status__in=sorted(OPEN_FOR_APPROVAL)) & ~Q(environment__required_approvals={})
                      & _newest_of_pair()),
        # A paused canary holds its environment's canary slot, newer releases or not: it always needs a person.
        attention=Count("id", filter=Q(status__in=sorted(FLEET_ATTENTION))
                        & (Q(status__in=sorted(CANARY_STATUSES)) | _newest_of_pair())),
    )


def fleet_summary(*, user, environment: str = "") -> dict[str, int]:
    """Fleet-wide counts for the page header from one aggregate query over the current releases: canaries, the
    newest release of a pair still open for approval where approvals are required, and the releases that need
    attention: a paused canary, or the newest release of a pair that failed or is blocked.

    The query reads every failed build of the history (40-100 ms at 5 000 services), and every viewer sees the
    same counts, so they are shared for ROLLGATE_FLEET_SUMMARY_CACHE_SECONDS: header counts lag by that much at
    most (the rows themselves are always read fresh)."""
    if not policy.can(user, policy.RELEASE_VIEW):
        return {"canaries": 0, "waiting": 0, "attention": 0}
    ttl = settings.ROLLGATE_FLEET_SUMMARY_CACHE_SECONDS
    if not ttl:
        return _fleet_counts(environment)
    key = f"fleet-summary:{environment}"
    counts = cache.get(key)
    if counts is None:
        counts = _fleet_counts(environment)
        cache.set(key, counts, ttl)
    return counts


# --- dashboard reads (issue 7: fleet approval badges, approvals inbox) -----------------------------------------


def approvals_missing(releases) -> dict[int, dict[str, int]]:
    """Release id -> {role: approvals still missing} for releases still open for approval, in one query.

    Releases past approval, or in environments needing none, are left out."""
    waiting = [r for r in releases if r is not None and r.status in OPEN_FOR_APPROVAL
               and r.environment.required_approvals]
    if not waiting:
        return {}
    given: dict[int, dict[str, int]] = {}
    for release_id, role in (Approval.objects.filter(release__in=[r.pk for r in waiting], step_weight=0,
                                                     stale_at__isnull=True, decision=ApprovalDecision.APPROVED)
                             .values_list("release_id", "role")):
        given.setdefault(release_id, {}).setdefault(role, 0)
        given[release_id][role] += 1
    result = {}
    for release in waiting:
        have = given.get(release.pk, {})
        missing = {role: count - have.get(role, 0)
                   for role, count in sorted(release.environment.required_approvals.items())
                   if count - have.get(role, 0) > 0}
        if missing:
            result[release.pk] = missing
    return result


INBOX_PAGE_SIZE = 50
BADGE_LIMIT = 99


def _inbox(user) -> QuerySet:
    """Releases waiting for an approval one of the user's roles can still give: built or building (not failed),
    in an environment that requires that role more often than it has approved, not started by the user and not
    yet decided by them. All of it in the database, so a page and the badge read only what they show."""
    roles = sorted(policy.roles_of(user))
    qs = (Release.objects.filter(status__in=sorted(AWAITING_APPROVAL),
                                 environment__required_approvals__has_any_keys=roles)
          .exclude(started_by=user)
          .exclude(Exists(Approval.objects.filter(release=OuterRef("pk"), user=user, step_weight=0,
                                                  stale_at__isnull=True))))
    still_needed = Q()
    for index, role in enumerate(roles):
        given = (Approval.objects.filter(release=OuterRef("pk"), role=role, decision=ApprovalDecision.APPROVED,
                                         step_weight=0, stale_at__isnull=True)
                 .order_by().values("release").annotate(n=Count("id")).values("n"))
        qs = qs.alias(**{f"given_{index}": Coalesce(Subquery(given, output_field=IntegerField()), 0),
                         f"needed_{index}": Cast(KeyTextTransform(role, "environment__required_approvals"),
                                                 IntegerField())})
        still_needed |= Q(**{f"needed_{index}__gt": F(f"given_{index}")})
    return qs.filter(still_needed) if roles else qs.none()


def approvals_inbox_count(*, user) -> int:
    """The nav badge: counted up to BADGE_LIMIT + 1 rows (the badge then says "99+")."""
    if not policy.can(user, policy.RELEASE_APPROVE):
        return 0
    count = _inbox(user)[:BADGE_LIMIT + 1].count()
    # Canaries waiting at a gray step for the user's role count too (one query when there are none).
    return count + len(approvals_step_waits(user=user)) if count <= BADGE_LIMIT else count


def approvals_inbox(*, user, cursor: str = "", size: int | None = None) -> KeysetPage:
    """A page of the inbox, newest first, each release with what is still missing ({role: count})."""
    if not policy.can(user, policy.RELEASE_APPROVE):
        return KeysetPage([], None, None)
    page = keyset_page(_inbox(user).select_related("service", "environment", "version", "started_by"),
                       field="created_at", size=size or INBOX_PAGE_SIZE, cursor=cursor)
    missing = approvals_missing(page.items)
    page.items = [(release, missing.get(release.pk, {})) for release in page.items]
    return page


STEP_WAITS_LIMIT = 200


@dataclass
class StepWait:
    release: Release
    weight: int
    missing: dict[str, int]

    @property
    def words(self) -> str:
        return f"waiting for {missing_words(self.missing)} to go to {self.weight} %"


def approvals_step_waits(*, user) -> list[StepWait]:
    """Canaries whose ramp waits at a gray step for an approval one of the user's roles can give (not started by
    the user, not yet decided by them at that step). Few at any time: read whole, newest first."""
    if not policy.can(user, policy.RELEASE_APPROVE):
        return []
    roles = policy.roles_of(user)
    candidates = (Release.objects.filter(status__in=[S.GRAY, S.PAUSED]).exclude(environment__gray_step_approvals={})
                  .exclude(started_by=user).select_related("service", "environment", "version", "started_by")
                  .order_by("-created_at", "-id")[:STEP_WAITS_LIMIT])
    waits = []
    for release in candidates:
        step = next_step(release)
        if not step:
            continue
        missing = approval_summary(release, step=step).missing
        if not set(missing) & roles:
            continue
        if release.approvals.filter(user=user, step_weight=step, stale_at__isnull=True).exists():
            continue
        waits.append(StepWait(release, step, missing))
    return waits
