"""Which live-event groups a user may join. The consumer asks this; this asks releases.policy."""
import re

from releases import events, policy

_RELEASE_GROUP = re.compile(r"^release\.(\d{1,12})$")


def default_groups(user) -> list[str]:
    """Every page needs fleet events (release status, the approvals badge). Audit events are many and only the
    audit log page shows them, so that page subscribes to "audit" itself: every event a socket does not need is
    work for the server and the browser on each change (see docs/PERFORMANCE.md, "Live updates")."""
    if policy.can(user, policy.RELEASE_VIEW):
        return [events.FLEET_GROUP]
    return []


def _fresh(user):
    """The user as the database has them now: a socket lives for hours, roles and is_active may change."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user.pk, is_active=True).first()


def may_join(user, group: str) -> bool:
    user = _fresh(user)
    if user is None:
        return False
    if group == events.FLEET_GROUP or _RELEASE_GROUP.match(group):
        return bool(policy.can(user, policy.RELEASE_VIEW))
    if group == events.AUDIT_GROUP:
        return bool(policy.can(user, policy.AUDIT_VIEW))
    return False


def session_expires_at(session_key: str | None):
    """When this login session expires (database sessions), or None: a socket must not outlive its session."""
    if not session_key:
        return None
    from django.contrib.sessions.models import Session

    return Session.objects.filter(session_key=session_key).values_list("expire_date", flat=True).first()
