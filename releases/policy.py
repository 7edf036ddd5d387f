"""Who may do what. The one policy module: API views, pages and the websocket all ask `can()`.

Roles are Django groups named after `Role` values. Deny by default: a user with no role may do nothing, and an
action missing from every role's set is refused. The matrix below is copied into README.md.
"""
from dataclasses import dataclass

from django.utils.translation import gettext, gettext_lazy

from releases.choices import Role

# Actions. "view" actions gate reads; the rest gate writes.
RELEASE_VIEW = "release.view"
RELEASE_CREATE = "release.create"
RELEASE_APPROVE = "release.approve"
RELEASE_REJECT = "release.reject"
RELEASE_PROMOTE = "release.promote"
RELEASE_PAUSE = "release.pause"
RELEASE_RESUME = "release.resume"
RELEASE_ROLLBACK = "release.rollback"
PIPELINE_RUN = "pipeline.run"
SCAN_OVERRIDE = "scan.override"
SERVICE_MANAGE = "service.manage"
ENVIRONMENT_MANAGE = "environment.manage"
ENVIRONMENT_SETTINGS_VIEW = "environment.settings.view"
AUDIT_VIEW = "audit.view"
SLA_VIEW = "sla.view"
SLA_POLICY_MANAGE = "sla.policy.manage"
# Gray routing (routing app): blue-green cut-over / switch-back, match rules, blocked versions.
ROUTING_MANAGE = "routing.manage"
WEBHOOK_MANAGE = "webhook.manage"  # pipelines: failure-notification webhooks

_READ_ALL = {RELEASE_VIEW, SLA_VIEW}

PERMISSIONS: dict[str, frozenset[str]] = {
    Role.DEVELOPER: frozenset(_READ_ALL | {RELEASE_CREATE, PIPELINE_RUN}),
    Role.RELEASE_MANAGER: frozenset(
        _READ_ALL
        | {
            RELEASE_CREATE, RELEASE_APPROVE, RELEASE_REJECT, RELEASE_PROMOTE, RELEASE_PAUSE, RELEASE_RESUME,
            RELEASE_ROLLBACK, PIPELINE_RUN, SCAN_OVERRIDE, AUDIT_VIEW, ENVIRONMENT_SETTINGS_VIEW,
            ROUTING_MANAGE,
        }
    ),
    Role.OPS: frozenset(
        _READ_ALL
        | {SERVICE_MANAGE, ENVIRONMENT_MANAGE, ENVIRONMENT_SETTINGS_VIEW, SLA_POLICY_MANAGE, AUDIT_VIEW,
           RELEASE_ROLLBACK, ROUTING_MANAGE, WEBHOOK_MANAGE}
    ),
    Role.QA: frozenset(_READ_ALL | {RELEASE_APPROVE, RELEASE_REJECT}),
    Role.AUDITOR: frozenset(_READ_ALL | {AUDIT_VIEW, ENVIRONMENT_SETTINGS_VIEW}),
}

ACTION_LABELS = {
    RELEASE_VIEW: gettext_lazy("see releases"),
    RELEASE_CREATE: gettext_lazy("create releases"),
    RELEASE_APPROVE: gettext_lazy("approve releases"),
    RELEASE_REJECT: gettext_lazy("reject releases"),
    RELEASE_PROMOTE: gettext_lazy("promote releases"),
    RELEASE_PAUSE: gettext_lazy("pause releases"),
    RELEASE_RESUME: gettext_lazy("resume releases"),
    RELEASE_ROLLBACK: gettext_lazy("roll back releases"),
    PIPELINE_RUN: gettext_lazy("run pipelines"),
    SCAN_OVERRIDE: gettext_lazy("override scan findings"),
    SERVICE_MANAGE: gettext_lazy("manage services"),
    ENVIRONMENT_MANAGE: gettext_lazy("manage environments and deploy targets"),
    ENVIRONMENT_SETTINGS_VIEW: gettext_lazy("see environment settings"),
    AUDIT_VIEW: gettext_lazy("read the audit log"),
    SLA_VIEW: gettext_lazy("read SLA reports"),
    SLA_POLICY_MANAGE: gettext_lazy("change SLA policies"),
    ROUTING_MANAGE: gettext_lazy("change gray routing (switch back, rules, blocked versions; cut over also needs "
                                 "release.promote)"),
    WEBHOOK_MANAGE: gettext_lazy("manage notification subscriptions and failure-notification webhooks"),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def roles_of(user) -> frozenset[str]:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_rollgate_roles", None)
    if cached is None:
        valid = set(Role.values)
        cached = frozenset(name for name in user.groups.values_list("name", flat=True) if name in valid)
        user._rollgate_roles = cached
    return cached


def roles_of_fresh(user) -> frozenset[str]:
    """Roles read again from the database (after a change), not the per-request cache."""
    if hasattr(user, "_rollgate_roles"):
        del user._rollgate_roles
    return roles_of(user)


def roles_with(action: str) -> list[str]:
    return [role for role, actions in PERMISSIONS.items() if action in actions]


def can(user, action: str) -> Decision:
    roles = roles_of(user)
    if not roles:
        return Decision(False, gettext("you have no Rollgate role; ask ops to give you one"))
    if any(action in PERMISSIONS[role] for role in roles):
        return Decision(True)
    needed = ", ".join(roles_with(action)) or gettext("nobody")
    label = ACTION_LABELS.get(action, action)
    return Decision(False, gettext("only %(needed)s may %(label)s; you are %(roles)s") % {
        "needed": needed, "label": label, "roles": ", ".join(sorted(roles))})


def permission_matrix() -> list[tuple[str, dict[str, bool]]]:
    """Rows of (action, {role: allowed}), in ACTION_LABELS order."""
    return [(action, {role: action in PERMISSIONS[role] for role in Role.values}) for action in ACTION_LABELS]


def permission_matrix_markdown() -> str:
    """The README's permission table; tests/releases/test_policy_matrix.py checks the README carries it."""
    lines = ["| action | " + " | ".join(Role.values) + " |", "|---|" + "---|" * len(Role.values)]
    for action, allowed in permission_matrix():
        marks = " | ".join("✔" if allowed[role] else "" for role in Role.values)
        lines.append(f"| {ACTION_LABELS[action]} (`{action}`) | {marks} |")
    return "\n".join(lines)


# --- Traffic moves: one rule for everything that deploys or moves traffic ---------------------------------------
# Roles say *who* may act (above); this table says *when*: freeze windows, approvals and blocked images.
# releases.services.traffic_check applies it for promote, resume, rollback, the routing app's cut-over, switch-back,
# rules and blocked versions, and the deploy app's rollback to a revision. The README carries this table.

FREEZE_ALLOWED = "allowed"
FREEZE_REFUSED = "refused"
FREEZE_STABLE_ONLY = "only to a version that was live here"

APPROVALS_NONE = ""
APPROVALS_RELEASE = "the release's approvals"
APPROVALS_WENT_LIVE = "the image went live here before"

MOVE_PROMOTE = "promote"
MOVE_RESUME = "resume"
MOVE_ROLLBACK = "rollback"
MOVE_CUT_OVER = "cut-over"
MOVE_SWITCH_BACK = "switch-back"
MOVE_RULES = "routing rules"
MOVE_BLOCK = "block a version"
MOVE_UNBLOCK = "unblock a version"
MOVE_REVISION_ROLLBACK = "rollback to a revision"


@dataclass(frozen=True)
class TrafficRule:
    freeze: str  # FREEZE_*
    approvals: str  # APPROVALS_* (protected environments)
    may_use_blocked_image: bool = False
    label: str = ""


TRAFFIC_RULES: dict[str, TrafficRule] = {
    MOVE_PROMOTE: TrafficRule(FREEZE_REFUSED, APPROVALS_RELEASE, label="promote (each rung, and promote fully)"),
    MOVE_RESUME: TrafficRule(FREEZE_REFUSED, APPROVALS_RELEASE, label="resume a paused canary"),
    MOVE_CUT_OVER: TrafficRule(FREEZE_REFUSED, APPROVALS_RELEASE, label="blue-green cut-over to the canary"),
    MOVE_RULES: TrafficRule(FREEZE_REFUSED, APPROVALS_RELEASE, label="change the canary's gray routing rules"),
    # Unblocking lifts a routing block only: a release the scan or the SLA gate blocked stays blocked for good.
    MOVE_UNBLOCK: TrafficRule(FREEZE_REFUSED, APPROVALS_NONE, may_use_blocked_image=True,
                              label="unblock a version in routing"),
    MOVE_REVISION_ROLLBACK: TrafficRule(FREEZE_STABLE_ONLY, APPROVALS_WENT_LIVE,
                                        label="rollback to a deploy revision"),
    MOVE_ROLLBACK: TrafficRule(FREEZE_ALLOWED, APPROVALS_NONE,
                               label="roll back a release (canary to 0 %, or the live one to the one it replaced)"),
    MOVE_SWITCH_BACK: TrafficRule(FREEZE_ALLOWED, APPROVALS_NONE, label="blue-green switch-back to the stable"),
    MOVE_BLOCK: TrafficRule(FREEZE_ALLOWED, APPROVALS_NONE, may_use_blocked_image=True,
                            label="block a version in routing"),
}


def traffic_rules_markdown() -> str:
    """The README's "when" table; tests/releases/test_traffic_policy.py checks the README carries it."""
    lines = ["| move | in a freeze window | protected environment needs | blocked image |", "|---|---|---|---|"]
    for rule in TRAFFIC_RULES.values():
        blocked = "allowed" if rule.may_use_blocked_image else "refused"
        lines.append(f"| {rule.label} | {rule.freeze} | {rule.approvals or 'nothing more'} | {blocked} |")
    return "\n".join(lines)
