"""Every write of gray routing: the agent registry and the routing changes (blue-green, rules, blocks).

Routing changes lock the service row like the release services do (so they serialise with promote / pause /
rollback), bump the table revision, write an audit row, and after commit wake the long-polls and the pages.
The canary's weight itself only changes through the release services; this module adds what the scheduler
needs on top: the blue-green cut-over and switch-back, match rules and blocked versions.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, pgettext

from releases import events, policy
from releases.errors import Forbidden, InvalidInput, NotFound, TransitionNotAllowed
from releases.models import AgentService, Environment, Release
from releases.selectors import canary_release
from releases.services import Actor, audit_record, require_permission, traffic_check
from releases.choices import ReleaseStatus
from rollgate_client.table import GrayRule, RoutingTableError
from routing import notify
from routing.auth import AgentPrincipal
from routing.models import AgentInstance, AgentStatus, RoutingOverride, RoutingState

S = ReleaseStatus
MAX_RULES = 50



def _resolve(service: str, environment: str) -> tuple[AgentService, Environment]:
    service_obj = AgentService.objects.filter(name=service).first()
    if service_obj is None:
        raise NotFound(gettext("service: no service named '%(service)s'") % {"service": service[:80]})
    env_obj = Environment.objects.filter(name=environment).first()
    if env_obj is None:
        raise NotFound(gettext("environment: no environment named '%(environment)s'") % {
                           "environment": environment[:30]})
    return service_obj, env_obj


# --- agent registry ------------------------------------------------------------------------------------------


def _check_scope(principal: AgentPrincipal, service: str, environment: str) -> None:
    if not principal.may_access(service, environment):
        raise Forbidden(principal.scope_error(service, environment))


def agent_register(*, principal: AgentPrincipal, service: str, environment: str, agent_id: str, version: str,
                   model: str = "", gray_tag: str = "", status: str = AgentStatus.HEALTHY,
                   region: str = "") -> tuple[AgentInstance, bool]:
    """Create or refresh an instance (an agent restarting with a new version registers again)."""
    _check_scope(principal, service, environment)
    service_obj, env_obj = _resolve(service, environment)
    now = timezone.now()
    instance, created = AgentInstance.objects.update_or_create(
        service=service_obj, environment=env_obj, agent_id=agent_id,
        defaults={"model": model, "version": version, "gray_tag": gray_tag, "status": status, "region": region,
                  "last_seen": now},
        create_defaults={"model": model, "version": version, "gray_tag": gray_tag, "status": status,
                         "region": region, "last_seen": now, "registered_at": now},
    )
    events.send_event_on_commit([events.FLEET_GROUP], "routing.instances",
                                    {"service": service_obj.name, "environment": env_obj.name})
    return instance, created


def agent_heartbeat(*, principal: AgentPrincipal, service: str, environment: str, agent_id: str, version: str,
                    model: str = "", gray_tag: str = "", status: str = AgentStatus.HEALTHY,
                    region: str = "") -> AgentInstance:
    """Refresh last_seen (and what the agent reports). An unknown agent must register first (404)."""
    _check_scope(principal, service, environment)
    service_obj, env_obj = _resolve(service, environment)
    updated = AgentInstance.objects.filter(service=service_obj, environment=env_obj, agent_id=agent_id).update(
        model=model, version=version, gray_tag=gray_tag, status=status, region=region, last_seen=timezone.now())
    if not updated:
        raise NotFound(gettext("agent_id: agent '%(agent_id)s' is not registered for %(service)s in "
                               "%(env)s; POST /api/agents/register first") % {
                           "agent_id": agent_id[:80], "service": service_obj.name, "env": env_obj.name})
    return AgentInstance.objects.get(service=service_obj, environment=env_obj, agent_id=agent_id)


# --- routing changes -----------------------------------------------------------------------------------------


def _lock_state(service: AgentService, environment: Environment) -> RoutingState:
    AgentService.objects.select_for_update(no_key=True).filter(pk=service.pk).get()
    state, _ = RoutingState.objects.get_or_create(service=service, environment=environment)
    return RoutingState.objects.select_for_update().get(pk=state.pk)


def _announce(service: AgentService, environment: Environment, release: Release | None, *,
              page_event: bool = True) -> None:
    """After commit: wake the schedulers' long-polls, and (routing changes) the release page's routing section.
    After a release transition the page already gets release.changed, so no second event is sent."""
    if page_event and release is not None:
        events.send_event_on_commit([events.release_group(release.pk)], "routing.changed",
                                    {"service": service.name, "environment": environment.name,
                                     "release_id": release.pk})
    transaction.on_commit(lambda: notify.publish_change(service.name, environment.name), robust=True)


def _change(*, actor: Actor, service: str, environment: str, action: str, reason: str, apply) -> RoutingState:
    """Lock, apply(state, canary) -> (details, to_state), bump the revision, audit, announce on commit."""
    require_permission(actor, policy.ROUTING_MANAGE)
    service_obj, env_obj = _resolve(service, environment)
    with transaction.atomic():
        state = _lock_state(service_obj, env_obj)
        canary = canary_release(service_obj, env_obj)
        details, to_state = apply(state, canary)
        state.revision = F("revision") + 1
        state.save()
        state.refresh_from_db()
        audit_record(actor=actor, action=action, object_type="routing", object_id=f"{service_obj.name}/{env_obj.name}",
                     release=canary, service=service_obj, environment=env_obj, to_state=to_state, reason=reason,
                     details={"revision": state.revision, **details})
        _announce(service_obj, env_obj, canary)
    return state


def _require_gray_canary(canary: Release | None, verb: str, service: str, environment: str) -> Release:
    if canary is None:
        raise TransitionNotAllowed(gettext("cannot %(verb)s: %(service)s has no canary release in "
                                           "%(environment)s") % {
                                       "verb": verb, "service": service, "environment": environment})
    if canary.status != S.GRAY:
        raise TransitionNotAllowed(gettext("cannot %(verb)s: the canary release #%(canary_id)s (%(tag)s) "
                                           "is %(status)s; it must be in gray") % {
                                       "verb": verb, "canary_id": canary.pk, "tag": canary.version.tag,
                                       "status": canary.status})
    return canary


def routing_cut_over(*, actor: Actor, service: str, environment: str, comment: str = "") -> RoutingState:
    """Blue-green: send all new traffic to the canary (the new colour). The stable stays as the way back.
    Moving all traffic is a promotion: it needs release.promote as well and passes the promote rules."""
    require_permission(actor, policy.RELEASE_PROMOTE)

    def apply(state, canary):
        canary = _require_gray_canary(canary, pgettext("refused action", "cut over"), service, environment)
        traffic_check(move=policy.MOVE_CUT_OVER, service=canary.service, environment=canary.environment,
                      tag=canary.version.tag, release=canary)
        if state.override == RoutingOverride.CUT_OVER and state.override_release_id == canary.pk:
            raise TransitionNotAllowed(gettext("%(tag)s already gets all new traffic") % {"tag": canary.version.tag})
        state.override, state.override_release = RoutingOverride.CUT_OVER, canary
        return {"version": canary.version.tag, "weight_before": canary.gray_weight, "weight_after": 100}, "cut_over"

    return _change(actor=actor, service=service, environment=environment, action="routing.cut_over",
                   reason=comment, apply=apply)


def routing_switch_back(*, actor: Actor, service: str, environment: str, comment: str = "") -> RoutingState:
    """Blue-green: all new traffic back to the stable (the old colour); the canary stays deployed for a retry."""

    def apply(state, canary):
        if canary is None:
            raise TransitionNotAllowed(gettext("cannot switch back: %(service)s has no canary release in "
                                               "%(environment)s") % {"service": service, "environment": environment})
        if state.override == RoutingOverride.SWITCH_BACK and state.override_release_id == canary.pk:
            raise TransitionNotAllowed(gettext("new traffic already goes to the stable version, not "
                                               "%(tag)s") % {"tag": canary.version.tag})
        traffic_check(move=policy.MOVE_SWITCH_BACK, service=canary.service, environment=canary.environment)
        state.override, state.override_release = RoutingOverride.SWITCH_BACK, canary
        return {"version": canary.version.tag, "weight_after": 0}, "switched_back"

    return _change(actor=actor, service=service, environment=environment, action="routing.switch_back",
                   reason=comment, apply=apply)


def validate_rules(rules) -> list[dict]:
    if not isinstance(rules, list):
        raise InvalidInput(gettext("rules: must be a list of gray rules, got %(name)s") % {
                               "name": type(rules).__name__}, field="rules")
    if len(rules) > MAX_RULES:
        raise InvalidInput(gettext("rules: at most %(most)s rules, got %(count)s") % {
                               "most": MAX_RULES, "count": len(rules)}, field="rules")
    parsed = []
    for index, rule in enumerate(rules):
        try:
            parsed.append(GrayRule.from_dict(rule, where=f"rules[{index}]").to_dict())
        except RoutingTableError as error:
            raise InvalidInput(str(error), field="rules")
    return parsed


def routing_rules_update(*, actor: Actor, service: str, environment: str, rules: list,
                         comment: str = "") -> RoutingState:
    """Replace the match rules (tenants, trace types, regions, feature flags, x-gray-tag) of the current canary."""
    parsed = validate_rules(rules)

    def apply(state, canary):
        if canary is None:
            raise TransitionNotAllowed(gettext("cannot set gray rules: %(service)s has no canary release "
                                               "in %(environment)s") % {
                                           "service": service, "environment": environment})
        traffic_check(move=policy.MOVE_RULES, service=canary.service, environment=canary.environment,
                      tag=canary.version.tag, release=canary)
        before = list(state.gray_rules) if state.rules_release_id == canary.pk else []
        state.gray_rules, state.rules_release = parsed, canary
        return {"version": canary.version.tag, "before": before, "after": parsed}, "rules_updated"

    return _change(actor=actor, service=service, environment=environment, action="routing.rules_update",
                   reason=comment, apply=apply)


def version_block(*, actor: Actor, service: str, environment: str, version: str, reason: str) -> RoutingState:
    """Take a version out of routing: schedulers never choose it (the SLA gate calls this with Actor.system)."""
    if not reason.strip():
        raise InvalidInput(gettext("reason: blocking a version needs a reason"), field="reason")

    def apply(state, canary):
        blocked = dict(state.blocked_versions or {})
        if version in blocked:
            raise TransitionNotAllowed(gettext("version %(version)s is already blocked in %(environment)s") % {
                                           "version": version, "environment": environment})
        traffic_check(move=policy.MOVE_BLOCK, service=state.service, environment=state.environment, tag=version)
        blocked[version] = {"reason": reason[:500], "by": actor.name, "at": timezone.now().isoformat()}
        state.blocked_versions = blocked
        return {"version": version}, "blocked"

    return _change(actor=actor, service=service, environment=environment, action="routing.version_block",
                   reason=reason, apply=apply)


def version_unblock(*, actor: Actor, service: str, environment: str, version: str, reason: str = "") -> RoutingState:
    def apply(state, canary):
        blocked = dict(state.blocked_versions or {})
        if blocked.pop(version, None) is None:
            raise TransitionNotAllowed(gettext("version %(version)s is not blocked in routing in "
                                               "%(environment)s") % {"version": version, "environment": environment})
        traffic_check(move=policy.MOVE_UNBLOCK, service=state.service, environment=state.environment, tag=version)
        state.blocked_versions = blocked
        return {"version": version}, "unblocked"

    return _change(actor=actor, service=service, environment=environment, action="routing.version_unblock",
                   reason=reason, apply=apply)


def routing_release_changed(*, release_id: int) -> None:
    """A release moved (promote, pause, rollback, gate...): bump the table revision and wake the long-polls.

    Called by the release_transitioned receiver after that change committed; the change itself is audited by
    the release service. A blue-green override set for this release ends here: the release decision wins."""
    release = Release.objects.filter(pk=release_id).select_related("service", "environment").first()
    if release is None:
        return
    with transaction.atomic():
        state, _ = RoutingState.objects.get_or_create(service=release.service, environment=release.environment)
        fields = {"revision": F("revision") + 1}
        if state.override_release_id == release.pk:
            fields.update(override=RoutingOverride.NONE, override_release=None)
        RoutingState.objects.filter(pk=state.pk).update(**fields)
        _announce(release.service, release.environment, release, page_event=False)
