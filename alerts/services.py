"""The Alertmanager receiver's writes: match each alert to a canary and stop it the way the environment says.

An alert names what it is about with labels (which ones is ROLLGATE_ALERTMANAGER_LABELS: service, environment,
version). A firing alert pauses or rolls back the matching canary (ROLLGATE_ALERTMANAGER_ACTIONS, per environment),
through releases.services like any other actor, so the transition map, the locks, the audit row and the deploy
reaction (traffic back to the stable) are the same as for a person's click. The actor is the system component
`alertmanager` and the reason is the alert's summary. A resolved alert is recorded; nothing ever resumes by itself:
a person looks and resumes (or promotes, or rolls back).
"""
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from alerts.models import AlertEvent, AlertOutcome, AlertStatus
from releases.choices import CANARY_STATUSES, ReleaseStatus
from releases.errors import DomainError
from releases.models import Release
from releases.services import Actor, audit_record, release_pause, release_rollback

ACTOR_NAME = "alertmanager"
ACTIONS = ("pause", "rollback")


@dataclass(frozen=True)
class AlertResult:
    fingerprint: str
    alertname: str
    status: str
    outcome: str
    detail: str
    release_id: int | None


def environment_action(environment: str) -> str:
    """What a firing alert does to a canary in `environment`: the environment's entry, else "*", else pause."""
    actions = settings.ROLLGATE_ALERTMANAGER_ACTIONS
    return actions.get(environment) or actions.get("*") or "pause"


def _summary(alert: dict) -> str:
    annotations = alert.get("annotations") or {}
    labels = alert.get("labels") or {}
    text = annotations.get("summary") or annotations.get("description") or labels.get("alertname") or "alert"
    return str(text)[:1000]


def _matching_canary(service: str, environment: str, version: str) -> tuple[Release | None, str]:
    canary = (Release.objects.filter(service__name=service, environment__name=environment,
                                     status__in=CANARY_STATUSES)
              .select_related("version").order_by("-id").first())
    if canary is None:
        return None, f"no canary of {service} in {environment}"
    if version and canary.version.tag != version:
        return None, (f"the canary of {service} in {environment} is {canary.version.tag}; the alert is about "
                      f"{version}")
    return canary, ""


def _record(alert: dict, *, names: tuple[str, str, str], release: Release | None, outcome: str,
            detail: str) -> AlertResult:
    labels = alert.get("labels") or {}
    service, environment, version = names
    event = AlertEvent.objects.create(
        status=alert["status"], alertname=str(labels.get("alertname", ""))[:200],
        fingerprint=str(alert.get("fingerprint") or "")[:64], service_name=service[:100],
        environment_name=environment[:100], version_tag=version[:100], summary=_summary(alert), labels=labels,
        starts_at=str(alert.get("startsAt") or "")[:40], ends_at=str(alert.get("endsAt") or "")[:40],
        release=release, outcome=outcome, detail=detail[:1000])
    return AlertResult(fingerprint=event.fingerprint, alertname=event.alertname, status=event.status,
                       outcome=outcome, detail=event.detail, release_id=release.pk if release else None)


def _firing(alert: dict, names: tuple[str, str, str]) -> AlertResult:
    service, environment, version = names
    canary, why_not = _matching_canary(service, environment, version)
    if canary is None:
        return _record(alert, names=names, release=None, outcome=AlertOutcome.NO_CANARY, detail=why_not)
    action = environment_action(environment)
    actor = Actor.system(ACTOR_NAME)
    summary = _summary(alert)
    try:
        if action == "rollback":
            release_rollback(actor=actor, release_id=canary.pk, comment=summary, canary_only=True)
            outcome, detail = AlertOutcome.ROLLED_BACK, f"rolled back #{canary.pk} ({canary.version.tag})"
        elif canary.status == ReleaseStatus.PAUSED:
            outcome, detail = AlertOutcome.ALREADY_STOPPED, f"#{canary.pk} ({canary.version.tag}) is already paused"
        else:
            release_pause(actor=actor, release_id=canary.pk, comment=summary)
            outcome, detail = AlertOutcome.PAUSED, f"paused #{canary.pk} ({canary.version.tag})"
    except DomainError as error:
        # The release moved meanwhile (a person rolled it back, it is still deploying and has no traffic to
        # pause): say what the release services said; Alertmanager repeats a firing alert, so a later delivery
        # acts once the release can be stopped.
        canary.refresh_from_db(fields=["status"])
        stopped = canary.status not in (ReleaseStatus.GRAY, ReleaseStatus.DEPLOYING)
        outcome = AlertOutcome.ALREADY_STOPPED if stopped else AlertOutcome.REFUSED
        return _record(alert, names=names, release=canary, outcome=outcome, detail=error.message)
    return _record(alert, names=names, release=canary, outcome=outcome, detail=detail)


def _resolved(alert: dict, names: tuple[str, str, str]) -> AlertResult:
    service, environment, version = names
    fingerprint = str(alert.get("fingerprint") or "")
    earlier = (AlertEvent.objects.filter(fingerprint=fingerprint, status=AlertStatus.FIRING,
                                         release__isnull=False).order_by("-id").first() if fingerprint else None)
    release = earlier.release if earlier else _matching_canary(service, environment, version)[0]
    detail = "resolved; nothing resumes by itself"
    if release is not None:
        with transaction.atomic():
            audit_record(actor=Actor.system(ACTOR_NAME), action="alert.resolved", object_type="release",
                         object_id=release.pk, release=release, from_state=release.status, to_state=release.status,
                         reason=_summary(alert), details={"alertname": (alert.get("labels") or {}).get("alertname", ""),
                                                          "fingerprint": fingerprint})
        detail = f"resolved; #{release.pk} stays {release.status} until a person acts"
    return _record(alert, names=names, release=release, outcome=AlertOutcome.RECORDED, detail=detail)


def alert_receive(*, alert: dict) -> AlertResult:
    """Handle one alert of an Alertmanager webhook (already validated: status, labels, annotations)."""
    labels = alert.get("labels") or {}
    label_names = settings.ROLLGATE_ALERTMANAGER_LABELS
    names = tuple(str(labels.get(label_names[key], "")) for key in ("service", "environment", "version"))
    if not names[0] or not names[1]:
        missing = [label_names[key] for key, value in zip(("service", "environment"), names) if not value]
        return _record(alert, names=names, release=None, outcome=AlertOutcome.UNMATCHED,
                       detail=f"the alert has no {' or '.join(missing)} label (ROLLGATE_ALERTMANAGER_LABELS)")
    if alert["status"] == AlertStatus.RESOLVED:
        return _resolved(alert, names)
    return _firing(alert, names)


def alerts_receive(*, alerts: list[dict]) -> list[AlertResult]:
    """Every alert of one webhook call, in order (Alertmanager sends one group; alerts in it are independent)."""
    return [alert_receive(alert=alert) for alert in alerts]
