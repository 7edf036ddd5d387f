"""OpenID Connect login (mozilla-django-oidc), next to the local accounts.

The identity provider says who someone is; ROLLGATE_OIDC_ROLE_MAP says which Rollgate roles its claim (groups, by
default) gives. Roles are set again at every SSO login, so removing someone from a group at the provider takes the
role away at their next login (audited as actor `sso`, like any role change). An SSO login never takes over a local
account: a user with a password (the demo's rm, ops, ...) can only log in with that password.
"""
import logging

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from releases.choices import Role
from releases.services import Actor

logger = logging.getLogger("rollgate.sso")
SSO_ACTOR = Actor.system("sso")


def roles_from_claims(claims: dict) -> set[str]:
    """The Rollgate roles the claim's values map to (unknown values give nothing: deny by default)."""
    mapping = settings.ROLLGATE_OIDC_ROLE_MAP
    unknown = sorted(set(mapping.values()) - set(Role.values))
    if unknown:
        raise ImproperlyConfigured(f"ROLLGATE_OIDC_ROLE_MAP maps to {unknown}, which are not roles; roles: "
                                   f"{', '.join(Role.values)}")
    values = claims.get(settings.ROLLGATE_OIDC_ROLE_CLAIM) or []
    if isinstance(values, str):
        values = [values]
    return {mapping[value] for value in values if isinstance(value, str) and value in mapping}


def sso_roles_sync(*, user, claims: dict) -> set[str]:
    """Make the user's Rollgate roles exactly what the claims map to; other (non-role) groups are left alone."""
    wanted = roles_from_claims(claims)
    current = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    user._rollgate_actor = SSO_ACTOR  # the audit row says the identity provider changed them
    with transaction.atomic():
        if current - wanted:
            user.groups.remove(*Group.objects.filter(name__in=current - wanted))
        if wanted - current:
            user.groups.add(*[Group.objects.get_or_create(name=name)[0] for name in sorted(wanted - current)])
    if hasattr(user, "_rollgate_roles"):
        del user._rollgate_roles
    return wanted


class RollgateOIDCBackend(OIDCAuthenticationBackend):
    """Users are matched by the username claim (ROLLGATE_OIDC_USERNAME_CLAIM); accounts made here have no
    password, and local accounts (with one) are never matched."""

    def _username(self, claims: dict) -> str:
        return str(claims.get(settings.ROLLGATE_OIDC_USERNAME_CLAIM) or "").strip()[:150]

    def verify_claims(self, claims):
        return bool(self._username(claims))

    def filter_users_by_claims(self, claims):
        username = self._username(claims)
        if not username:
            return self.UserModel.objects.none()
        users = self.UserModel.objects.filter(username=username)
        if any(user.has_usable_password() for user in users):
            logger.warning("SSO login refused: %s is a local account", username)
            raise SuspiciousOperation(f"{username} is a local account; it logs in with its password")
        return users

    def create_user(self, claims):
        user = self.UserModel.objects.create_user(self._username(claims), email=claims.get("email", ""))
        user.set_unusable_password()
        user.save(update_fields=["password"])
        sso_roles_sync(user=user, claims=claims)
        return user

    def update_user(self, user, claims):
        if claims.get("email") and user.email != claims["email"]:
            user.email = claims["email"]
            user.save(update_fields=["email"])
        sso_roles_sync(user=user, claims=claims)
        return user

    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except SuspiciousOperation as error:
            logger.warning("SSO login failed: %s", error)
            return None
