"""python manage.py demo_setup: make staging the local demo environment (after seed_demo; see demo/setup.py)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from demo.setup import local_demo_setup


class Command(BaseCommand):
    help = ("Local demo: staging on the local deploy target, a demo SLA policy in seconds, agent-infer's build "
            "context, an agent token for the traffic generator (written to var/demo/agent-token, never printed).")

    def add_arguments(self, parser):
        parser.add_argument("--var-dir", default=None, help="where the demo keeps its files (default: var/)")
        parser.add_argument("--registry", default="127.0.0.1:5000", help="registry the pipeline pushes to")

    def handle(self, *args, var_dir=None, registry="127.0.0.1:5000", **options):
        try:
            lines = local_demo_setup(var_dir=Path(var_dir) if var_dir else None, registry=registry)
        except LookupError as error:
            raise CommandError(str(error)) from None
        for line in lines:
            self.stdout.write(line)
