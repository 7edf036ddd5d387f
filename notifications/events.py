"""Which audit rows are events release managers act on, and what their message says. A read: no writes here.

Every release transition, the gate's manual reviews included, writes exactly one audit row
(releases.services.audit_record), so the audit row is the one place an event is recognised; its id makes the
event's key. Freeze windows have no audit row (time passes): the sweeper makes their events (freeze_event).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext as _

from notifications.channels import Message
from notifications.choices import EventType
from notifications.models import public_url
from releases.choices import ReleaseStatus as S
from releases.redaction import redact


@dataclass(frozen=True)
class Event:
    type: str
    key: str
    environment: str
    compose: Callable[[], Message]  # the message in the active language (each subscription has its own)
    release_id: int | None = None
    audience_roles: tuple[str, ...] = ()  # approval_needed: the roles whose approval is missing

    def message(self, language: str = "en") -> Message:
        with translation.override(language):
            return self.compose()


def _release_line(release) -> str:
    return _("%(service)s %(version)s in %(environment)s") % {
        "service": release.service.name, "version": release.version.tag, "environment": release.environment.name}


def _classify(audit) -> str | None:
    if audit.action == "sla.manual_review":
        return EventType.MANUAL_REVIEW
    if audit.object_type != "release" or audit.release_id is None:
        return None
    to_state, from_state = audit.to_state, audit.from_state
    if to_state == S.READY and from_state in (S.PENDING, S.BUILDING):
        return EventType.APPROVAL_NEEDED  # only if approvals are missing: decided in audit_event
    if to_state == S.LIVE and from_state != S.LIVE:
        return EventType.LIVE
    if audit.action == "release.promote" and to_state in (S.GRAY, S.DEPLOYING):
        return EventType.PROMOTED
    if to_state == S.PAUSED and from_state != S.PAUSED:
        return EventType.PAUSED
    if to_state == S.ROLLED_BACK:
        return EventType.ROLLED_BACK
    if to_state == S.BLOCKED:
        return EventType.BLOCKED
    return None


def audit_event(audit, *, missing_approvals=None) -> Event | None:
    """The event an audit row announces, or None. `missing_approvals(release) -> {role: count}` is asked only
    for a release that just became ready."""
    event_type = _classify(audit)
    if event_type is None:
        return None
    release = audit.release
    reason = redact(audit.reason or "")
    weights = audit.details or {}
    actor = audit.actor_name
    audience: tuple[str, ...] = ()
    missing = {}
    if event_type == EventType.APPROVAL_NEEDED:
        missing = missing_approvals(release) if missing_approvals else {}
        if not missing:
            return None
        audience = tuple(sorted(missing))
    data = {"release_id": release.pk, "service": release.service.name, "environment": release.environment.name,
            "version": release.version.tag, "status": release.status, "gray_weight": release.gray_weight,
            "actor": actor, "reason": reason, "audit_id": audit.pk}
    if audience:
        data["approving_roles"] = list(audience)
    values = {"where": "", "actor": actor, "tag": release.version.tag, "environment": release.environment.name,
              "weight": release.gray_weight, "from": weights.get("from_weight", 0),
              "to": weights.get("to_weight", release.gray_weight)}

    def compose() -> Message:
        words = {**values, "where": _release_line(release)}
        link = public_url(f"/releases/{release.pk}/")
        if event_type == EventType.APPROVAL_NEEDED:
            title = _("[Rollgate] Approval needed: %(where)s") % words
            lines = (_("Waiting for approval from %(roles)s") % {
                         "roles": ", ".join(f"{n} {role}" for role, n in sorted(missing.items()))},
                     _("Started by %(user)s") % {
                         "user": release.started_by.get_username() if release.started_by_id else "?"})
        elif event_type == EventType.PROMOTED:
            title = _("[Rollgate] Promoted: %(where)s to %(to)s %%") % words
            lines = (_("%(from)s %% → %(to)s %% by %(actor)s") % words,)
        elif event_type == EventType.LIVE:
            title = _("[Rollgate] Live: %(where)s") % words
            lines = (_("%(tag)s serves all traffic in %(environment)s (by %(actor)s)") % words,)
        elif event_type == EventType.PAUSED:
            title = _("[Rollgate] Paused: %(where)s at %(weight)s %%") % words
            lines = (_("Paused by %(actor)s") % words,)
        elif event_type == EventType.ROLLED_BACK:
            title = _("[Rollgate] Rolled back: %(where)s") % words
            lines = (_("Rolled back by %(actor)s") % words,)
            link = public_url(f"/releases/{release.pk}/#sla")  # the gate's verdict, rules and charts
        elif event_type == EventType.BLOCKED:
            title = _("[Rollgate] Blocked: %(where)s") % words
            lines = (_("Blocked by %(actor)s: nothing deploys or routes to %(tag)s again") % words,)
        else:  # manual review
            title = _("[Rollgate] Manual review needed: %(where)s") % words
            lines = (_("The SLA gate holds the ramp until a person resumes or rolls back"),)
            link = public_url(f"/releases/{release.pk}/#sla")
        if reason:
            lines = (*lines, reason)  # the gate's verdict sentence, or the person's comment (as written)
        return Message(event=event_type, title=title, lines=lines, link=link, link_text=_("Open in Rollgate"),
                       data=data)

    return Event(type=event_type, key=f"audit-{audit.pk}", environment=release.environment.name,
                 release_id=release.pk, audience_roles=audience, compose=compose)


def freeze_event(*, environment: str, window: dict, started: bool, window_key: str) -> Event:
    event_type = EventType.FREEZE_STARTED if started else EventType.FREEZE_ENDED
    reason = redact(str(window.get("reason") or ""))
    if "start" in window:
        span = f"{window['start']} – {window['end']}"
    else:
        span = (f"weekdays {','.join(map(str, window.get('weekdays', [])))} {window.get('from')}–{window.get('to')} "
                f"{window.get('time_zone') or 'UTC'}")
    words = {"environment": environment, "span": span, "reason": reason}

    def compose() -> Message:
        if started:
            title = _("[Rollgate] Freeze started in %(environment)s") % words
            lines = (_("No promotion in %(environment)s until the window ends (%(span)s); rollbacks are still "
                       "allowed") % words,)
        else:
            title = _("[Rollgate] Freeze ended in %(environment)s") % words
            lines = (_("Promotions in %(environment)s are allowed again (window %(span)s)") % words,)
        if reason:
            lines = (*lines, _("Reason: %(reason)s") % words)
        return Message(event=event_type, title=title, lines=lines, link=public_url("/environments/"),
                       link_text=_("Open in Rollgate"), data={"environment": environment, "window": window})

    return Event(type=event_type, key=f"freeze-{environment}-{window_key}-{'start' if started else 'end'}",
                 environment=environment, compose=compose)


def approval_step_event(*, release, step_weight: int, missing: dict, reason: str) -> Event:
    """A release that waits for approvals at a gray step, or whose approvals went stale (releases.signals.
    approval_needed). The wait at build time (step 0) is recognised from its audit row (audit_event)."""
    import hashlib

    reason = redact(reason)
    audience = tuple(sorted(missing))
    digest = hashlib.sha256(f"{step_weight}|{sorted(missing.items())}|{reason}".encode()).hexdigest()[:12]

    def compose() -> Message:
        words = {"where": _release_line(release)}
        return Message(
            event=EventType.APPROVAL_NEEDED, title=_("[Rollgate] Approval needed: %(where)s") % words,
            lines=(_("Waiting for approval from %(roles)s") % {
                       "roles": ", ".join(f"{n} {role}" for role, n in sorted(missing.items()))}, reason),
            link=public_url(f"/releases/{release.pk}/"), link_text=_("Open in Rollgate"),
            data={"release_id": release.pk, "service": release.service.name,
                  "environment": release.environment.name, "version": release.version.tag,
                  "status": release.status, "gray_weight": release.gray_weight, "step_weight": step_weight,
                  "approving_roles": list(audience), "reason": reason})

    return Event(type=EventType.APPROVAL_NEEDED, key=f"approval-{release.pk}-{step_weight}-{digest}",
                 environment=release.environment.name, release_id=release.pk, audience_roles=audience,
                 compose=compose)
