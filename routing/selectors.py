"""Reads for gray routing: the routing table of a service in an environment, and the agent instances."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from releases.choices import ReleaseStatus
from releases.models import AgentService, Environment, Release
from releases.selectors import canary_release, live_release
from rollgate_client.table import GrayRule, RoutingTable, RoutingTableError
from routing.models import AgentInstance, RoutingOverride, RoutingState

S = ReleaseStatus


class NoTable(LookupError):
    """There is no routing table (unknown service or environment, or nothing live yet); the message says which."""


def stale_after() -> timedelta:
    return timedelta(seconds=settings.ROLLGATE_AGENT_HEARTBEAT_SECONDS * settings.ROLLGATE_AGENT_MISSED_HEARTBEATS)


def instances(*, service: AgentService, environment: Environment, version: str = "",
              include_stale: bool = True) -> QuerySet:
    qs = AgentInstance.objects.filter(service=service, environment=environment)
    if version:
        qs = qs.filter(version=version)
    if not include_stale:
        qs = qs.filter(last_seen__gte=timezone.now() - stale_after())
    return qs.order_by("version", "agent_id")


def is_stale(instance: AgentInstance, *, now=None) -> bool:
    return instance.last_seen < (now or timezone.now()) - stale_after()


@dataclass
class VersionInstances:
    version: str
    live: list[AgentInstance]
    stale: list[AgentInstance]


def instances_by_version(*, service: AgentService, environment: Environment) -> list[VersionInstances]:
    now = timezone.now()
    groups: dict[str, VersionInstances] = {}
    for instance in instances(service=service, environment=environment):
        group = groups.setdefault(instance.version, VersionInstances(instance.version, [], []))
        (group.stale if is_stale(instance, now=now) else group.live).append(instance)
    return list(groups.values())


def rules_from_release(raw) -> list[dict]:
    """Release.gray_rules is one rule ({"tenants": [...]}), a list of rules, or {"rules": [...]}; {} is none."""
    if not raw:
        return []
    if isinstance(raw, dict) and "rules" in raw:
        raw = raw["rules"]
    if isinstance(raw, dict):
        raw = [raw]
    return list(raw) if isinstance(raw, list) else []


def _parse_rules(raw: list, where: str) -> tuple[GrayRule, ...]:
    rules = []
    for index, rule in enumerate(raw):
        try:
            rules.append(GrayRule.from_dict(rule, where=f"{where}[{index}]"))
        except RoutingTableError:
            # Stored rules were validated when written; an old malformed release rule must not take the table down.
            continue
    return tuple(rules)


@dataclass
class TableView:
    """The table plus what the page shows next to it (which releases it comes from, the override)."""

    table: RoutingTable
    live: Release
    canary: Release | None
    state: RoutingState | None
    blocked_reasons: dict[str, str]

    @property
    def override(self) -> str:
        if self.state and self.canary and self.state.override_release_id == self.canary.pk:
            return self.state.override
        return ""


def routing_view(*, service: str, environment: str) -> TableView:
    service_obj = AgentService.objects.filter(name=service).first()
    if service_obj is None:
        raise NoTable(f"service: no service named '{service[:80]}'")
    env_obj = Environment.objects.filter(name=environment).first()
    if env_obj is None:
        raise NoTable(f"environment: no environment named '{environment[:80]}'")
    return routing_view_for(service_obj, env_obj)


def routing_view_for(service: AgentService, environment: Environment) -> TableView:
    live = live_release(service, environment)
    if live is None:
        raise NoTable(f"{service.name} has no live release in {environment.name} yet; schedulers use their "
                      f"configured stable version until one goes live")
    canary = canary_release(service, environment)
    state = RoutingState.objects.filter(service=service, environment=environment).first()

    stable_version = live.version.tag
    canary_version = None
    weight = 0.0
    rules: tuple[GrayRule, ...] = ()
    if canary is not None and canary.version.tag != stable_version:
        canary_version = canary.version.tag
        if canary.status in (S.GRAY, S.PAUSED):
            # Deploying: the canary is not running yet, so no traffic. Paused holds the ramp where it is: the
            # canary keeps its share until someone resumes or rolls back (rollback is what cuts traffic).
            weight = float(canary.gray_weight)
            raw = rules_from_release(canary.gray_rules)
            if state and state.rules_release_id == canary.pk:
                raw = raw + list(state.gray_rules)
            rules = _parse_rules(raw, "gray_rules")
        if state and state.override_release_id == canary.pk:
            if state.override == RoutingOverride.CUT_OVER and canary.status in (S.GRAY, S.PAUSED):
                weight = 100.0
            elif state.override == RoutingOverride.SWITCH_BACK:
                weight, rules = 0.0, ()

    blocked_reasons: dict[str, str] = {}
    current = {stable_version} | ({canary_version} if canary_version else set())
    # A release the scan or the SLA gate blocked takes its version out of routing (unless it was released again).
    for tag, reason in (Release.objects.filter(service=service, environment=environment, status=S.BLOCKED)
                        .exclude(version__tag__in=current).values_list("version__tag", "status_reason")):
        blocked_reasons.setdefault(tag, reason or "release blocked")
    if state:
        for tag, info in (state.blocked_versions or {}).items():
            blocked_reasons[tag] = (info or {}).get("reason", "") or "blocked in routing"
    table = RoutingTable(
        service=service.name, environment=environment.name, revision=state.revision if state else 0,
        stable_version=stable_version, canary_version=canary_version, canary_weight=weight, gray_rules=rules,
        blocked_versions=tuple(sorted(blocked_reasons)),
    )
    return TableView(table=table, live=live, canary=canary, state=state, blocked_reasons=blocked_reasons)


def routing_table(*, service: str, environment: str) -> RoutingTable:
    return routing_view(service=service, environment=environment).table


def known_versions(service: AgentService) -> set[str]:
    from releases.models import Version

    return set(Version.objects.filter(service=service).values_list("tag", flat=True))



def blocked_in_routing(service: AgentService, environment: Environment) -> dict[str, str]:
    """{version: reason} of the versions ops or the SLA gate took out of routing here (RoutingState)."""
    state = RoutingState.objects.filter(service=service, environment=environment).only("blocked_versions").first()
    return {tag: (info or {}).get("reason", "") or "blocked in routing"
            for tag, info in ((state.blocked_versions or {}) if state else {}).items()}
