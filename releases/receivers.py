"""Security-relevant changes that happen outside the release services but must be audited: login lockouts
(django-axes) and role changes (Django groups, from admin, a shell or seed_demo). Connected in ReleasesConfig.ready.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from releases.choices import Role
from releases.services import Actor, audit_record, session_ended, user_roles_changed


def audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    path = getattr(request, "path", "") if request is not None else ""
    with transaction.atomic():
        audit_record(actor=Actor.system("login-throttle"), action="auth.lockout", object_type="user",
                     object_id=str(username or "")[:40], to_state="locked_out",
                     reason=f"too many failed logins for '{str(username or '')[:80]}' or from {ip_address}",
                     details={"username": str(username or "")[:150], "ip_address": ip_address or "", "path": path})


def audit_group_change(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
    """m2m_changed on User.groups: one audit row per user whose roles changed, with who changed them when the
    admin told us (AuditedUserAdmin sets instance._rollgate_actor)."""
    if action not in ("post_add", "post_remove", "pre_clear", "post_clear"):
        return
    User = get_user_model()
    if action == "pre_clear":
        # Remember what a clear() takes away; post_clear has no pk_set.
        if isinstance(instance, User):
            instance._rollgate_cleared = set(instance.groups.values_list("name", flat=True))
        return
    if isinstance(instance, User):
        users = [instance]
        if action == "post_clear":
            names = getattr(instance, "_rollgate_cleared", set())
        else:
            names = set(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    else:  # group.user_set.add(...): instance is the group
        users = list(User.objects.filter(pk__in=pk_set or ())) if action != "post_clear" else []
        names = {instance.name}
    names = {name for name in names if name in Role.values}
    if not names or not users:
        return
    verb = "added" if action == "post_add" else "removed"
    for user in users:
        by = getattr(instance, "_rollgate_actor", None)
        # a person (the admin), a system component (SSO sets Actor.system("sso")), or unknown
        actor = by if isinstance(by, Actor) else Actor.of(by) if by is not None else Actor.system("django")
        user_roles_changed(actor=actor, user=user, added=sorted(names) if verb == "added" else [],
                           removed=sorted(names) if verb == "removed" else [])


def close_sockets_on_logout(sender, request=None, user=None, **kwargs) -> None:
    session = getattr(request, "session", None)
    session_ended(session_key=getattr(session, "session_key", "") or "")
