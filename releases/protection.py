"""Rules for an environment's protection: which roles may be required to approve, how many, at which gray steps.

Pure checks (no database): environment_update applies them to the environment as it would be after a change, so
the API, the environment page and seed commands refuse the same mistakes with the same words (InvalidInput: 400
naming the field). A role that cannot approve would leave every release waiting forever; a protected environment
without a required approval would promote at once.
"""
from django.utils.translation import gettext

from releases import policy
from releases.choices import Role
from releases.errors import InvalidInput

MAX_APPROVALS_PER_ROLE = 5


def approver_roles() -> list[str]:
    """The roles that hold the approve permission: the only ones an environment may require."""
    return policy.roles_with(policy.RELEASE_APPROVE)


def check_required_approvals(value, *, field: str = "required_approvals") -> dict[str, int]:
    """{role: count} with every role able to approve and 0 <= count <= 5; zero counts are dropped."""
    if not isinstance(value, dict):
        raise InvalidInput(gettext("%(field)s: must be an object of role -> number of approvals, e.g. "
                                   "{\"release_manager\": 1, \"qa\": 1}") % {"field": field}, field=field)
    approvers = approver_roles()
    cleaned = {}
    for role, count in value.items():
        if role not in Role.values:
            raise InvalidInput(gettext("%(field)s: unknown role %(role)s; roles: %(values)s") % {
                                   "field": field, "role": str(role)[:40], "values": ', '.join(Role.values)},
                               field=field)
        if role not in approvers:
            raise InvalidInput(gettext("%(field)s: %(role)s cannot approve releases (only %(approvers)s "
                                       "hold %(permission)s); a release waiting for %(role)s would "
                                       "wait forever") % {
                                   "field": field, "role": role, "approvers": ', '.join(approvers),
                                   "permission": policy.RELEASE_APPROVE},
                               field=field)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_APPROVALS_PER_ROLE:
            raise InvalidInput(gettext("%(field)s: the number of %(role)s approvals must be a whole "
                                       "number from 0 to %(most)s") % {
                                   "field": field, "role": role, "most": MAX_APPROVALS_PER_ROLE}, field=field)
        if count:
            cleaned[role] = count
    return cleaned


def check_step_approvals(value, *, ladder: list[int], field: str = "gray_step_approvals") -> dict[str, dict]:
    """{"<weight>": {role: count}}: approvals needed before the ramp moves to that rung of the gray ladder."""
    if not isinstance(value, dict):
        raise InvalidInput(gettext("%(field)s: must be an object of weight -> approvals, e.g. {\"50\": "
                                   "{\"qa\": 1}, \"100\": {\"release_manager\": 1}}") % {"field": field}, field=field)
    cleaned = {}
    later = ladder[1:]  # the first rung is reached by the promotion itself: its approvals come before promotion
    for weight, approvals in value.items():
        if not str(weight).isdigit() or int(weight) not in later:
            raise InvalidInput(gettext("%(field)s: '%(weight)s' is not a rung after the first of this "
                                       "environment's gray ladder (%(value)s %%); the first rung is "
                                       "covered by the approvals before promotion") % {
                                   "field": field, "weight": str(weight)[:10],
                                   "value": ', '.join(str(w) for w in later)}, field=field)
        step = check_required_approvals(approvals, field=field)
        if step:
            cleaned[str(int(weight))] = step
    return dict(sorted(cleaned.items(), key=lambda item: int(item[0])))


def check_protection(*, protected: bool, required_approvals: dict, changed: set[str]) -> None:
    """A protected environment needs at least one required approval. Names the field the change touched."""
    if protected and not required_approvals:
        field = "required_approvals" if "required_approvals" in changed else "protected"
        raise InvalidInput(gettext("%(field)s: a protected environment needs at least one required "
                                   "approval (e.g. {\"release_manager\": 1}); to promote without approvals, "
                                   "set protected to false") % {"field": field},
                           field=field)
