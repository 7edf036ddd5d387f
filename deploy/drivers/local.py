"""TargetDriver for environments whose deploy_target is "local": releases become local processes.

Environment.target_settings (all optional):
  state_dir          where the target keeps its state (default var/local-target/ under the project)
  agent_config       versions.yaml for the demo agent (default: demo/agent/versions.yaml)
  profiles           {"v1.2.0": "slow"}: run a version with another behaviour profile than versions.yaml names
  command            the command to run per version, a list with {service} {env} {version} {port} {listen_fd}
  startup_timeout_s  how long a new version has to answer its health check (default 20)
  agent_token_file   the file holding this environment's agent token, passed to the agents as
                     ROLLGATE_AGENT_TOKEN_FILE so they register with the agent registry (agent tokens are per
                     environment; default: the worker's own ROLLGATE_AGENT_TOKEN_FILE, if any)

The stable version is the environment's live release; the canary is the release being rolled out. The canary's
traffic share is decided by the scheduler from the routing table, so set_weight changes no process: it logs the
weight and health-checks the canary (TargetError when the canary is not healthy).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from deploy.drivers import register_driver
from deploy.targets.base import TRACK_CANARY, TRACK_STABLE, DeployOutcome, LogFn, RolloutResult, TargetError
from deploy.targets.local import LocalTarget, agent_command
from releases.choices import ReleaseStatus
from releases.models import Environment, Release


def target_for(environment: Environment, log: LogFn | None = None) -> LocalTarget:
    options = environment.target_settings or {}
    state_dir = options.get("state_dir") or Path(settings.BASE_DIR) / "var" / "local-target"
    command = options.get("command") or agent_command(config=options.get("agent_config"))
    try:
        token_file = options.get("agent_token_file")
        if token_file is not None and not isinstance(token_file, str):
            raise TypeError(f"agent_token_file must be a path, got {type(token_file).__name__}")
        return LocalTarget(state_dir, command=command, profiles=options.get("profiles") or {},
                           startup_timeout_s=float(options.get("startup_timeout_s", 20)), log=log,
                           extra_env={"ROLLGATE_AGENT_TOKEN_FILE": token_file} if token_file else {})
    except (TypeError, ValueError) as error:
        raise TargetError(f"environment {environment.name}: target_settings: {error}") from None


def _release(release_id: int) -> Release:
    return Release.objects.select_related("service", "environment", "version", "previous_release__version").get(
        pk=release_id)


def _stable_of(release: Release) -> Release | None:
    """The environment's live release other than this one (the version the canary ramps against)."""
    return (Release.objects.select_related("version")
            .filter(service=release.service, environment=release.environment, status=ReleaseStatus.LIVE)
            .exclude(pk=release.pk).first())


class LocalDriver:
    def rollout(self, *, release_id: int, log: LogFn) -> DeployOutcome:
        release = _release(release_id)
        service, env = release.service.name, release.environment.name
        target = target_for(release.environment, log)
        stable = _stable_of(release)
        if stable is not None:
            # After a reboot the stable may not be running; the canary is measured against it, so bring it back.
            process, started = target.start(service, env, stable.version.tag, track=TRACK_STABLE)
            if started:
                result = target.wait_healthy(process)
                log(f"stable {stable.version.tag} restarted: {result.reason}")
        track = TRACK_CANARY if stable is not None else TRACK_STABLE
        process, _ = target.start(service, env, release.version.tag, track=track)
        rollout = target.wait_healthy(process)
        if rollout.ok:
            return DeployOutcome("deployed", rollout)
        log(f"{service} {release.version.tag} in {env} failed its health check: {rollout.reason}: {rollout.message}")
        for line in rollout.diagnostics:
            log(f"  {line}")
        if not release.environment.auto_rollback:
            return DeployOutcome("failed", rollout, notes=["auto-rollback is off: the failed process is left "
                                                           "running for inspection"])
        target.stop(service, env, release.version.tag)
        notes = [f"stopped {release.version.tag}"]
        if stable is not None:
            notes.append(f"stable {stable.version.tag} keeps all traffic")
            return DeployOutcome("rolled_back", rollout, RolloutResult(True, "Complete", notes[-1]), notes=notes)
        return DeployOutcome("failed", rollout, notes=notes)

    def set_weight(self, *, release_id: int, weight: int, log: LogFn) -> None:
        release = _release(release_id)
        target_for(release.environment, log).set_weight(release.service.name, release.environment.name,
                                                        release.version.tag, weight)

    def go_live(self, *, release_id: int, log: LogFn) -> None:
        release = _release(release_id)
        stopped = target_for(release.environment, log).go_live(release.service.name, release.environment.name,
                                                               release.version.tag)
        log(f"{release.version.tag} is stable in {release.environment.name}; stopped: {', '.join(stopped) or 'none'}")

    def roll_back(self, *, release_id: int, log: LogFn) -> None:
        """Stop the rolled-back version. The release that is live now (a canary rollback never replaced it; a
        live rollback restored it) must run, so make sure its version does first; never an older one."""
        release = _release(release_id)
        live = _stable_of(release)
        restore = live.version.tag if live is not None and live.version.tag != release.version.tag else None
        target_for(release.environment, log).roll_back(release.service.name, release.environment.name,
                                                       release.version.tag, restore=restore)

    def cancel(self, *, release_id: int, log: LogFn) -> None:
        """The rollout was cancelled or failed: stop its version unless the live release runs the same one."""
        release = _release(release_id)
        live = _stable_of(release)
        if live is not None and live.version.tag == release.version.tag:
            return
        stopped = target_for(release.environment, log).stop(release.service.name, release.environment.name,
                                                            release.version.tag)
        if stopped:
            log(f"stopped {release.version.tag} of {release.service.name} in {release.environment.name}")


register_driver("local", LocalDriver())
