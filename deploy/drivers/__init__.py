"""Drivers: the Django side of each deploy target kind. A driver reads releases and revisions, talks to its
target (deploy/targets/, Django-free) and records what happened.

Each environment names a target kind (Environment.deploy_target: "kubernetes", "local", or "none" when Rollgate only
records decisions). A kind registers one driver here (deploy.apps). The deploy tasks call it, one task per release
transition (the table in deploy/receivers.py):

  rollout(release_id, log)        ready -> deploying: start its canary (or first stable) and watch it; the Rollout
                                  row then reports with releases.services.release_rollout_finished
  cancel(release_id, log)         rolled back while deploying, or the rollout failed: remove what the rollout
                                  started; never touch the stable, never re-apply an older release
  set_weight(release_id, weight)  gray weight changed (5 -> 10 -> ...): move that share of traffic to the canary
  go_live(release_id)             the release reached 100 %: it becomes the stable version; the old one goes
  roll_back(release_id)           a canary cut, or a live release undone: traffic back to the live release

Drivers run outside any database transaction: they talk to clusters and processes.
"""
from typing import Protocol

from deploy.targets.base import DeployOutcome, LogFn, TargetError


class TargetDriver(Protocol):
    def rollout(self, *, release_id: int, log: LogFn) -> DeployOutcome: ...

    def set_weight(self, *, release_id: int, weight: int, log: LogFn) -> None: ...

    def go_live(self, *, release_id: int, log: LogFn) -> None: ...

    def roll_back(self, *, release_id: int, log: LogFn) -> None: ...

    def cancel(self, *, release_id: int, log: LogFn) -> None: ...


_DRIVERS: dict[str, TargetDriver] = {}


def register_driver(kind: str, driver: TargetDriver) -> None:
    _DRIVERS[kind] = driver


def driver_for(kind: str) -> TargetDriver:
    try:
        return _DRIVERS[kind]
    except KeyError:
        known = ", ".join(sorted(_DRIVERS)) or "none registered"
        raise TargetError(f"no driver for deploy target '{kind}' (known: {known})") from None
