"""Create, list and revoke agent tokens (the credential of agents and schedulers; see routing/auth.py)."""
from django.core.management.base import BaseCommand, CommandError

from releases.models import AgentService, Environment
from routing import auth
from routing.models import AgentToken


class Command(BaseCommand):
    help = "Agent tokens: create (prints the key once), list, revoke."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="command", required=True)
        create = sub.add_parser("create")
        create.add_argument("--environment", required=True)
        create.add_argument("--service", default="", help="limit the token to one service")
        create.add_argument("--name", required=True, help="who holds it, e.g. scheduler-prod-bj")
        sub.add_parser("list")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("token_id", type=int)

    def handle(self, *args, **options):
        if options["command"] == "create":
            environment = Environment.objects.filter(name=options["environment"]).first()
            if environment is None:
                raise CommandError(f"--environment: no environment named {options['environment']!r}")
            service = None
            if options["service"]:
                service = AgentService.objects.filter(name=options["service"]).first()
                if service is None:
                    raise CommandError(f"--service: no service named {options['service']!r}")
            token, key = auth.token_create(name=options["name"], environment=environment, service=service)
            self.stderr.write(f"token #{token.pk} {token}: the key is shown once, store it now")
            self.stdout.write(key)
        elif options["command"] == "list":
            for token in AgentToken.objects.select_related("environment", "service").order_by("pk"):
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
                self.stdout.write(f"#{token.pk} {token} {state}")
        else:
            if not auth.token_revoke(token_id=options["token_id"]):
                raise CommandError(f"token #{options['token_id']} does not exist or is already revoked")
            self.stdout.write(f"token #{options['token_id']} revoked")
