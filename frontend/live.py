"""Which live-event groups a user may join. The consumer asks this; this asks releases.policy."""
import re

from releases import events, policy

_RELEASE_GROUP = re.compile(r"^release\.(\d{1,12})$")


def default_groups(user) -> list[str]:
    groups = []
    if policy.can(user, policy.RELEASE_VIEW):
        groups.append(events.FLEET_GROUP)
    if policy.can(user, policy.AUDIT_VIEW):
        groups.append(events.AUDIT_GROUP)
    return groups


def may_join(user, group: str) -> bool:
    if group == events.FLEET_GROUP or _RELEASE_GROUP.match(group):
        return bool(policy.can(user, policy.RELEASE_VIEW))
    if group == events.AUDIT_GROUP:
        return bool(policy.can(user, policy.AUDIT_VIEW))
    return False
