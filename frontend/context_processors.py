"""Navigation facts for full pages. Lazy: partials that never show the nav never run the queries."""
from django.utils.functional import cached_property

from releases import policy, selectors


class Nav:
    def __init__(self, request):
        self.user = request.user

    def _can(self, action) -> bool:
        return bool(policy.can(self.user, action))

    @cached_property
    def roles(self) -> list[str]:
        return sorted(policy.roles_of(self.user))

    @cached_property
    def can_approve(self) -> bool:
        return self._can(policy.RELEASE_APPROVE)

    @cached_property
    def can_create(self) -> bool:
        return self._can(policy.RELEASE_CREATE)

    @cached_property
    def can_audit(self) -> bool:
        return self._can(policy.AUDIT_VIEW)

    @cached_property
    def can_environments(self) -> bool:
        return self._can(policy.ENVIRONMENT_SETTINGS_VIEW)

    @cached_property
    def inbox_count(self) -> int:
        return selectors.approvals_inbox_count(user=self.user) if self.can_approve else 0

    @property
    def inbox_limit(self) -> int:
        return selectors.BADGE_LIMIT


def nav(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"nav": Nav(request)}
