"""python manage.py local_agents: the agent processes of `make run`.

Starts the live release (stable) and any gray or paused release (canary) of every environment whose deploy
target is "local", then waits. On SIGTERM or SIGINT (Ctrl-C under honcho) it stops every process the local
target recorded, including those the Celery worker started, so no agent outlives the demo.
"""

import signal
import threading
import time

from django.core.management.base import BaseCommand

from deploy.drivers.local import target_for
from deploy.targets.base import TRACK_CANARY, TRACK_STABLE
from releases.choices import DeployTargetKind, ReleaseStatus
from releases.models import Environment, Release


class Command(BaseCommand):
    help = "Run the local target's live and gray versions until stopped, then stop every agent process."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="start what should run, then exit (no stop)")
        parser.add_argument("--stop", action="store_true", help="only stop every recorded agent process")

    def handle(self, *args, once=False, stop=False, **options):
        environments = list(Environment.objects.filter(deploy_target=DeployTargetKind.LOCAL))
        if not environments:
            self.stdout.write("no environment uses the local deploy target; nothing to run")
        targets = {env.name: target_for(env, self.stdout.write) for env in environments}
        if stop:
            self._stop_all(targets)
            return
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        try:
            for env in environments:
                releases = sorted(
                    Release.objects.select_related("service", "version").filter(
                        environment=env, status__in=[ReleaseStatus.LIVE, ReleaseStatus.GRAY, ReleaseStatus.PAUSED]),
                    key=lambda release: release.status != ReleaseStatus.LIVE)  # the stable first
                for release in releases:
                    if stopping.is_set():
                        break
                    track = TRACK_STABLE if release.status == ReleaseStatus.LIVE else TRACK_CANARY
                    target = targets[env.name]
                    process, _ = target.start(release.service.name, env.name, release.version.tag, track=track)
                    result = target.wait_healthy(process)
                    self.stdout.write(f"{env.name}: {release.service.name} {release.version.tag} ({track}) "
                                      f"{process.url} {result.reason}")
            if once:
                return
            self.stdout.write("local agents running; Ctrl-C stops them")
            stopping.wait()
        finally:
            if not once:
                self._stop_all(targets)

    def _stop_all(self, targets, linger_s: float = 1.5):  # honcho SIGKILLs after 5 s
        unique = {target.state_dir: target for target in targets.values()}.values()
        for target in unique:
            stopped = target.stop()
            self.stdout.write(f"stopped {len(stopped)} agent process group(s) in {target.state_dir}")
        # Ctrl-C stops the worker at the same moment; a deploy it was finishing may record one more process.
        deadline = time.monotonic() + linger_s
        while time.monotonic() < deadline:
            time.sleep(0.25)
            for target in unique:
                for version in target.stop():
                    self.stdout.write(f"stopped {version}, started while shutting down")
