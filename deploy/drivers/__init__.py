"""The seam between release transitions and the deploy targets.

Each environment names a target kind (Environment.deploy_target: "kubernetes", "local", or "none" when Rollgate only
records decisions). A kind registers one *driver* here. The pipeline's deploy stage and the receivers of
releases.signals.release_transitioned call the driver:

  rollout(release_id, log)        the release went ready -> deploying: start its canary (or stable) and watch it;
                                  the deploy stage then reports with releases.services.release_rollout_finished
  set_weight(release_id, weight)  gray weight changed (5 -> 10 -> ...): move that share of traffic to the canary
  go_live(release_id)             the release reached 100 %: it becomes the stable version; the old one goes
  roll_back(release_id)           the release was rolled back: traffic back to stable (or to the restored release)

Drivers run outside any database transaction: they talk to clusters and processes.
"""
from typing import Protocol

from deploy.targets.base import DeployOutcome, LogFn, TargetError


class TargetDriver(Protocol):
    def rollout(self, *, release_id: int, log: LogFn) -> DeployOutcome: ...

    def set_weight(self, *, release_id: int, weight: int, log: LogFn) -> None: ...

    def go_live(self, *, release_id: int, log: LogFn) -> None: ...

    def roll_back(self, *, release_id: int, log: LogFn) -> None: ...


_DRIVERS: dict[str, TargetDriver] = {}


def register_driver(kind: str, driver: TargetDriver) -> None:
    _DRIVERS[kind] = driver


def driver_for(kind: str) -> TargetDriver:
    try:
        return _DRIVERS[kind]
    except KeyError:
        known = ", ".join(sorted(_DRIVERS)) or "none registered"
        raise TargetError(f"no driver for deploy target '{kind}' (known: {known})") from None
