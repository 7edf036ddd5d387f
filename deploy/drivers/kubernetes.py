"""The kubernetes TargetDriver: releases and their transitions, turned into revisions applied to a cluster.

Registered in deploy.drivers as "kubernetes" when the app is ready. Every method reads the database, talks to
the cluster with no transaction open, then records what happened (DeployRevision rows, audit) in short
transactions through deploy.services.

Strategies (Environment.target_settings["strategy"]):
  "canary" (default)  stable Deployment <service> plus canary Deployment <service>-canary; gray weights become
                      Istio weights (with the release's gray tag as an x-gray-tag header match) or a replica ratio.
  "blue_green"        Deployments <service>-blue and <service>-green; the Service selector is switched in one
                      patch at go-live, switched back when the new colour does not hold, and the idle colour is
                      scaled down after idle_scale_down_delay_seconds (a Celery task with a countdown).
"""
import dataclasses
import logging
from dataclasses import dataclass

from django.db import transaction

from deploy import selectors
from deploy import services as deploy_services
from deploy.credentials import kubernetes_credentials
from deploy.queue import enqueue_on_commit
from deploy.models import DeployRevision, DeployRevisionStatus, TargetCredential
from deploy.targets.base import (
    COLOURS,
    TRACK_CANARY,
    TRACK_STABLE,
    DeployOutcome,
    LogFn,
    Revision,
    RolloutResult,
    TargetError,
    deploy_revision,
)
from deploy.targets.k8s_credentials import Redactor
from deploy.targets.kubernetes import KubernetesTarget, KubernetesTargetSettings
from deploy.targets.manifests import GRAY_HEADER, render_revision
from deploy.targets.values import ValuesError
from releases.models import AuditEvent, Environment, Release
from releases.selectors import live_release
from releases.services import Actor

logger = logging.getLogger("rollgate.deploy")
R = DeployRevisionStatus
SYSTEM = Actor.system("deploy")
STRATEGIES = ("canary", "blue_green")


@dataclass(frozen=True)
class TargetOptions:
    strategy: str
    canary_replicas: int
    progress_deadline_seconds: int
    settings: KubernetesTargetSettings


def target_options(environment: Environment) -> TargetOptions:
    """Parse an environment's target_settings strictly: an unknown key is an error naming it."""
    raw = dict(environment.target_settings or {})
    strategy = raw.pop("strategy", "canary")
    if strategy not in STRATEGIES:
        raise TargetError(f"{environment.name}: target_settings.strategy must be one of {', '.join(STRATEGIES)} "
                          f"(got {strategy!r})")
    canary_replicas = raw.pop("canary_replicas", 1)
    progress_deadline = raw.pop("progress_deadline_seconds", 600)
    known = {f.name for f in dataclasses.fields(KubernetesTargetSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TargetError(f"{environment.name}: unknown target_settings key {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known | {'strategy', 'canary_replicas', 'progress_deadline_seconds'}))}")
    return TargetOptions(strategy, int(canary_replicas), int(progress_deadline), KubernetesTargetSettings(**raw))


def header_match_for(release: Release) -> dict[str, str] | None:
    """The release's gray tag as a header match: {"gray_tag": "gray-phase-A"} -> {"x-gray-tag": "gray-phase-A"}."""
    tag = (release.gray_rules or {}).get("gray_tag")
    return {GRAY_HEADER: str(tag)} if tag else None


class _Session:
    """One environment's target for one driver call, with a log that never shows the credentials."""

    def __init__(self, environment: Environment, log: LogFn):
        self.environment = environment
        self.options = target_options(environment)
        credential = TargetCredential.objects.filter(environment=environment).first()
        credentials = kubernetes_credentials(credential, environment_name=environment.name)
        self.log = Redactor(credentials.secret_values()).wrap(log)
        self.target = KubernetesTarget(credentials, log=log, settings=self.options.settings)

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc) -> None:
        self.target.close()


def _release(release_id: int) -> Release:
    release = (Release.objects.select_related("service", "environment", "version", "previous_release")
               .filter(pk=release_id).first())
    if release is None:
        raise TargetError(f"no release with id {release_id}")
    return release


def _actor_for(release: Release, action: str) -> Actor:
    """Who the history names: the person whose action (promote, rollback) led to this deploy, else the system."""
    event = (AuditEvent.objects.filter(release=release, action=action).select_related("actor")
             .order_by("-created_at", "-id").first())
    if event is None:
        return SYSTEM
    return Actor(user=event.actor, name=event.actor_name)


def _render(release: Release, options: TargetOptions, **kwargs) -> Revision:
    try:
        values = selectors.merged_values(release.service, release.environment, image_tag=release.version.tag)
    except (ValuesError, ValueError) as error:
        raise TargetError(f"values for {release.service.name} in {release.environment.name}: {error}") from None
    if kwargs.get("track") == TRACK_CANARY:
        values["replicaCount"] = options.canary_replicas
    return render_revision(release.service.name, release.environment.name, values,
                           progress_deadline_seconds=options.progress_deadline_seconds, **kwargs)


class KubernetesDriver:
    # -- rollout (ready -> deploying, run by the deploy stage) ---------------------------------------------
    def rollout(self, *, release_id: int, log: LogFn) -> DeployOutcome:
        release = _release(release_id)
        service, environment = release.service, release.environment
        with _Session(environment, log) as session:
            options, target = session.options, session.target
            last_good_row = selectors.last_deployed(service, environment)
            if options.strategy == "blue_green":
                active = target.active_colour(service.name, environment.name)
                colour = COLOURS[1] if active == COLOURS[0] else COLOURS[0]
                revision = _render(release, options, colour=colour)
                session.log(f"blue-green: {colour} gets {release.version.tag}; {active or 'nothing'} keeps serving "
                            "until go-live switches the Service")
                last_good = None  # traffic never moved to the new colour: the old one keeps serving
            elif last_good_row is not None and (release.rollout_weight or 0) < 100:
                revision = _render(release, options, track=TRACK_CANARY)
                last_good = None  # the canary gets no traffic until the rollout succeeds
            else:
                revision = _render(release, options)
                last_good = Revision.from_json(last_good_row.revision_json) if last_good_row else None
            outcome = deploy_revision(target, revision, last_good=last_good, auto_rollback=environment.auto_rollback,
                                      log=session.log, timeout_seconds=options.settings.rollout_timeout_seconds)
            if outcome.status != "deployed" and environment.auto_rollback and last_good is None:
                # Nothing to re-apply: stop the failed canary or colour from crash-looping next to the good one.
                target.scale(service.name, environment.name, replicas=0, track=revision.track, colour=revision.colour)
                outcome.notes.append("failed workload scaled down")
        actor = _actor_for(release, "release.promote")
        status = R.DEPLOYED if outcome.status == "deployed" else R.FAILED
        deploy_services.revision_record(service=service, environment=environment, revision=revision, status=status,
                                        actor=actor, release=release, rollout_reason=outcome.rollout.reason,
                                        description=f"{'canary' if revision.track == TRACK_CANARY else 'deploy'} "
                                                    f"{release.version.tag} (release #{release.pk})")
        if outcome.rollback_rollout is not None:
            ok = outcome.rollback_rollout.ok
            deploy_services.revision_record(
                service=service, environment=environment, revision=last_good, status=R.DEPLOYED if ok else R.FAILED,
                actor=actor, release=last_good_row.release, description=f"rollback to {last_good_row.number}",
                rollback_of=last_good_row.number, rollout_reason=outcome.rollback_rollout.reason)
        return outcome

    # -- gray weight ---------------------------------------------------------------------------------------
    def set_weight(self, *, release_id: int, weight: int, log: LogFn) -> None:
        release = _release(release_id)
        service, environment = release.service, release.environment
        with _Session(environment, log) as session:
            if session.options.strategy == "blue_green":
                session.log(f"blue-green: {release.version.tag} is warm on its colour; traffic switches all at once "
                            f"at go-live, not at {weight} %")
                return
            stable = selectors.last_deployed(service, environment)
            if stable is None:
                raise TargetError(f"{service.name} has no deployed stable revision in {environment.name}")
            session.target.set_traffic(service.name, environment.name, stable_tag=stable.image_tag,
                                       canary_tag=release.version.tag, weight=weight,
                                       header_match=header_match_for(release) if weight > 0 else None)

    # -- go live (100 %) -----------------------------------------------------------------------------------
    def go_live(self, *, release_id: int, log: LogFn) -> None:
        release = _release(release_id)
        with _Session(release.environment, log) as session:
            if session.options.strategy == "blue_green":
                self._go_live_blue_green(release, session)
            else:
                self._go_live_canary(release, session)

    def _go_live_canary(self, release: Release, session: _Session) -> None:
        service, environment, target = release.service, release.environment, session.target
        canary = selectors.last_deployed(service, environment, track=TRACK_CANARY, release_id=release.pk)
        stable = selectors.last_deployed(service, environment)
        if canary is None:
            if stable is not None and stable.release_id == release.pk:
                session.log(f"{release.version.tag} already runs on the stable track")
            return
        revision = _render(release, session.options)
        previous = Revision.from_json(stable.revision_json) if stable else None
        outcome = deploy_revision(target, revision, last_good=previous, auto_rollback=environment.auto_rollback,
                                  log=session.log, timeout_seconds=session.options.settings.rollout_timeout_seconds)
        ok = outcome.status == "deployed"
        deploy_services.revision_record(
            service=service, environment=environment, revision=revision, status=R.DEPLOYED if ok else R.FAILED,
            actor=_actor_for(release, "release.promote"), release=release, rollout_reason=outcome.rollout.reason,
            description=f"go live {release.version.tag} (release #{release.pk})")
        if outcome.rollback_rollout is not None and stable is not None:
            deploy_services.revision_record(
                service=service, environment=environment, revision=previous,
                status=R.DEPLOYED if outcome.rollback_rollout.ok else R.FAILED, actor=SYSTEM, release=stable.release,
                description=f"rollback to {stable.number}", rollback_of=stable.number,
                rollout_reason=outcome.rollback_rollout.reason)
        if not ok:
            self._undo_live(release, f"the stable rollout of {release.version.tag} failed: {outcome.rollout.reason}")
            return
        # All traffic to the stable track (now the new version), then the canary can go.
        try:
            target.set_traffic(service.name, environment.name, stable_tag=release.version.tag,
                               canary_tag=release.version.tag, weight=0)
        except TargetError as error:
            session.log(f"resetting the gray split: {error}")
        target.scale(service.name, environment.name, replicas=0, track=TRACK_CANARY)
        deploy_services.revision_mark(revision_id=canary.pk, from_statuses={R.DEPLOYED}, to_status=R.SUPERSEDED)

    def _go_live_blue_green(self, release: Release, session: _Session) -> None:
        service, environment, target = release.service, release.environment, session.target
        row = selectors.release_stable_revision(release.pk)
        if row is None or not row.colour:
            raise TargetError(f"release #{release.pk} has no rolled-out colour in {environment.name}")
        revision = Revision.from_json(row.revision_json)
        try:
            switch = target.switch_blue_green(service.name, environment.name, to_colour=row.colour)
        except TargetError as error:
            session.log(f"not switching to {row.colour}: {error}")
            self._undo_live(release, f"switch to {row.colour} refused: {error}")
            return
        if switch.previous in (None, switch.active):
            return  # the first colour, or already switched by an earlier attempt of this task
        # The new colour must still hold now that it takes every request; otherwise switch back at once.
        check = target.watch_rollout(revision, timeout_seconds=min(30.0, session.options.settings.rollout_timeout_seconds))
        if not check.ok:
            target.switch_blue_green(service.name, environment.name, to_colour=switch.previous)
            session.log(f"{row.colour} did not hold after the switch ({check.reason}); switched back to {switch.previous}")
            self._undo_live(release, f"{row.colour} failed after the switch: {check.reason}; switched back")
            return
        # The idle colour stays warm for a quick switch back, then goes (a task with a countdown).
        with transaction.atomic():
            enqueue_on_commit("deploy.scale_down_idle", service.pk, environment.pk,
                              countdown=session.options.settings.idle_scale_down_delay_seconds)

    @staticmethod
    def _undo_live(release: Release, reason: str) -> None:
        """The cluster could not take the release live: take it back in the release record too."""
        from releases.errors import DomainError
        from releases.services import release_rollback

        try:
            release_rollback(actor=SYSTEM, release_id=release.pk, comment=reason)
        except DomainError as error:  # e.g. nothing earlier to restore: say so, leave the record as it is
            logger.warning("release #%s could not be rolled back after a failed go-live: %s", release.pk, error)

    # -- roll back (a canary cut, or a live release undone) -------------------------------------------------
    def roll_back(self, *, release_id: int, log: LogFn) -> None:
        release = _release(release_id)
        service, environment = release.service, release.environment
        with _Session(environment, log) as session:
            canary = selectors.last_deployed(service, environment, track=TRACK_CANARY, release_id=release.pk)
            if canary is not None:
                # Claim first: a second delivery of this task finds the canary already rolled back.
                if not deploy_services.revision_mark(revision_id=canary.pk, from_statuses={R.DEPLOYED},
                                                     to_status=R.ROLLED_BACK):
                    return
                stable = selectors.last_deployed(service, environment)
                if stable is not None:
                    try:
                        session.target.set_traffic(service.name, environment.name, stable_tag=stable.image_tag,
                                                   canary_tag=release.version.tag, weight=0)
                    except TargetError as error:
                        session.log(f"canary traffic to 0: {error}")
                session.target.scale(service.name, environment.name, replicas=0, track=TRACK_CANARY)
                session.log(f"canary {release.version.tag} of {service.name} in {environment.name} rolled back")
                return
            own = list(DeployRevision.objects.filter(release=release, track=TRACK_STABLE, status=R.DEPLOYED))
            if not own:
                # The release never ran on the stable track: there is nothing of it to undo, and re-applying
                # anything else could only put an older version back.
                session.log(f"{release.version.tag} never ran as the stable of {service.name} in "
                            f"{environment.name}; nothing to restore")
                return
            for row in own:
                deploy_services.revision_mark(revision_id=row.pk, from_statuses={R.DEPLOYED}, to_status=R.ROLLED_BACK)
            # Restore what the release record restored: the release that is live now, never an older one.
            restored = live_release(service, environment)
            target_row = selectors.release_stable_revision(restored.pk) if restored else None
            if target_row is None:
                session.log(f"no earlier revision to restore for {service.name} in {environment.name}")
                return
            self._reapply(session, target_row, actor=_actor_for(release, "release.rollback"))

    # -- cancel (rolled back while deploying, or the rollout failed) ------------------------------------------
    def cancel(self, *, release_id: int, log: LogFn) -> None:
        """Remove what the release's rollout started, never what serves traffic: its canary (or idle colour), or
        its stable workload only when no release is live in the environment. Nothing is re-applied."""
        release = _release(release_id)
        service, environment = release.service, release.environment
        with _Session(environment, log) as session:
            target = session.target
            own = list(DeployRevision.objects.filter(release=release, status=R.DEPLOYED))
            for row in own:
                deploy_services.revision_mark(revision_id=row.pk, from_statuses={R.DEPLOYED}, to_status=R.ROLLED_BACK)
            live = live_release(service, environment)
            if session.options.strategy == "blue_green":
                active = target.active_colour(service.name, environment.name)
                for colour in COLOURS:
                    if colour != active and target.scale(service.name, environment.name, replicas=0, colour=colour,
                                                         only_version=release.version.tag):
                        session.log(f"idle colour {colour} of {service.name} scaled down")
                return
            if target.scale(service.name, environment.name, replicas=0, track=TRACK_CANARY,
                            only_version=release.version.tag):
                session.log(f"canary of {service.name} in {environment.name} scaled to 0 "
                            f"({release.version.tag} cancelled)")
            if live is None and any(row.track == TRACK_STABLE for row in own):
                # Its first version went to the stable track and nothing else is live: it must not stay running.
                target.scale(service.name, environment.name, replicas=0, track=TRACK_STABLE,
                             only_version=release.version.tag)
                session.log(f"{release.version.tag} was the only version of {service.name}; scaled to 0")

    # -- rollback to a chosen revision ----------------------------------------------------------------------
    def revision_rollback(self, *, revision_id: int, actor: Actor, log: LogFn) -> DeployRevision | None:
        row = DeployRevision.objects.select_related("service", "environment", "release").get(pk=revision_id)
        with _Session(row.environment, log) as session:
            return self._reapply(session, row, actor=actor)

    def _reapply(self, session: _Session, row: DeployRevision, *, actor: Actor) -> DeployRevision | None:
        """Apply exactly ``row``'s manifests, watch, and record "rollback to N". Nothing is recorded when those
        manifests already run (an auto-rollback or an earlier delivery got there first)."""
        service, environment, target = row.service, row.environment, session.target
        revision = Revision.from_json(row.revision_json)
        current = selectors.last_deployed(service, environment)
        active = target.active_colour(service.name, environment.name) if revision.colour else None
        if current is not None and current.digest == row.digest and active in (None, revision.colour):
            session.log(f"revision {row.number} already runs in {environment.name}")
            return None
        session.log(f"rollback of {service.name} in {environment.name} to revision {row.number} "
                    f"({row.image_tag})")
        target.apply(revision)
        result: RolloutResult = target.watch_rollout(
            revision, timeout_seconds=session.options.settings.rollout_timeout_seconds)
        if result.ok and revision.colour and active != revision.colour:
            target.switch_blue_green(service.name, environment.name, to_colour=revision.colour)
        if not result.ok:
            session.log(f"rollback to revision {row.number} did not roll out: {result.reason}: {result.message}")
        return deploy_services.revision_record(
            service=service, environment=environment, revision=revision,
            status=R.DEPLOYED if result.ok else R.FAILED, actor=actor, release=row.release,
            description=f"rollback to {row.number}", rollback_of=row.number, rollout_reason=result.reason)

    # -- blue-green idle colour ----------------------------------------------------------------------------
    def scale_down_idle(self, *, service_name: str, environment: Environment, log: LogFn) -> None:
        with _Session(environment, log) as session:
            if session.options.strategy != "blue_green":
                return
            result = session.target.scale_down_idle(service_name, environment.name)
            session.log(f"idle colour of {service_name} in {environment.name}: {result.reason}")


driver = KubernetesDriver()
