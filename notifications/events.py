"""Which audit rows are events release managers act on, and what their message says. A read: no writes here.

Every release transition, the gate's manual reviews included, writes exactly one audit row
(releases.services.audit_record), so the audit row is the one place an event is recognised; its id makes the
event's key. Freeze windows have no audit row (time passes): the sweeper makes their events (freeze_event).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    message: Message
    release_id: int | None = None
    audience_roles: tuple[str, ...] = ()  # approval_needed: the roles whose approval is missing


def _release_line(release) -> str:
    return f"{release.service.name} {release.version.tag} in {release.environment.name}"


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
    where = _release_line(release)
    link = public_url(f"/releases/{release.pk}/")
    reason = redact(audit.reason or "")
    weights = audit.details or {}
    by = f"by {audit.actor_name}"
    audience: tuple[str, ...] = ()
    if event_type == EventType.APPROVAL_NEEDED:
        missing = missing_approvals(release) if missing_approvals else {}
        if not missing:
            return None
        audience = tuple(sorted(missing))
        title = f"[Rollgate] Approval needed: {where}"
        lines = ("Waiting for approval from " + ", ".join(f"{n} {role}" for role, n in sorted(missing.items())),
                 f"Started by {release.started_by.get_username() if release.started_by_id else 'unknown'}")
    elif event_type == EventType.PROMOTED:
        title = f"[Rollgate] Promoted: {where} to {weights.get('to_weight', release.gray_weight)} %"
        lines = (f"{weights.get('from_weight', 0)} % → {weights.get('to_weight', release.gray_weight)} % {by}",)
    elif event_type == EventType.LIVE:
        title = f"[Rollgate] Live: {where}"
        lines = (f"{release.version.tag} serves all traffic in {release.environment.name} ({by})",)
    elif event_type == EventType.PAUSED:
        title = f"[Rollgate] Paused: {where} at {release.gray_weight} %"
        lines = (f"Paused {by}",)
    elif event_type == EventType.ROLLED_BACK:
        title = f"[Rollgate] Rolled back: {where}"
        lines = (f"Rolled back {by}",)
        link = public_url(f"/releases/{release.pk}/#sla")  # the gate's verdict, rules and charts
    elif event_type == EventType.BLOCKED:
        title = f"[Rollgate] Blocked: {where}"
        lines = (f"Blocked {by}: nothing deploys or routes to {release.version.tag} again",)
    else:  # manual review
        title = f"[Rollgate] Manual review needed: {where}"
        lines = ("The SLA gate holds the ramp until a person resumes or rolls back",)
        link = public_url(f"/releases/{release.pk}/#sla")
    if reason:
        lines = (*lines, reason)  # the gate's verdict sentence, or the person's comment
    data = {"release_id": release.pk, "service": release.service.name, "environment": release.environment.name,
            "version": release.version.tag, "status": release.status, "gray_weight": release.gray_weight,
            "actor": audit.actor_name, "reason": reason, "audit_id": audit.pk}
    if audience:
        data["approving_roles"] = list(audience)
    return Event(type=event_type, key=f"audit-{audit.pk}", environment=release.environment.name,
                 release_id=release.pk, audience_roles=audience,
                 message=Message(event=event_type, title=title, lines=lines, link=link, data=data))


def freeze_event(*, environment: str, window: dict, started: bool, window_key: str) -> Event:
    event_type = EventType.FREEZE_STARTED if started else EventType.FREEZE_ENDED
    reason = redact(str(window.get("reason") or ""))
    if "start" in window:
        span = f"{window['start']} – {window['end']}"
    else:
        span = (f"weekdays {','.join(map(str, window.get('weekdays', [])))} {window.get('from')}–{window.get('to')} "
                f"{window.get('time_zone') or 'UTC'}")
    if started:
        title = f"[Rollgate] Freeze started in {environment}"
        lines = (f"No promotion in {environment} until the window ends ({span}); rollbacks are still allowed",)
    else:
        title = f"[Rollgate] Freeze ended in {environment}"
        lines = (f"Promotions in {environment} are allowed again (window {span})",)
    if reason:
        lines = (*lines, f"Reason: {reason}")
    return Event(type=event_type, key=f"freeze-{environment}-{window_key}-{'start' if started else 'end'}",
                 environment=environment,
                 message=Message(event=event_type, title=title, lines=lines, link=public_url("/environments/"),
                                 data={"environment": environment, "window": window}))
