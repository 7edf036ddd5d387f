"""Create the demo: one agent service, the four environments with their gray ladders, and one user per role."""
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from releases.choices import Role
from releases.models import AgentService, Environment, GrayPhase

ENVIRONMENTS = [
    # name, position, protected, required approvals
    ("dev", 0, False, {}),
    ("test", 1, False, {}),
    ("staging", 2, False, {}),
    ("prod", 3, True, {"release_manager": 1, "qa": 1}),
]
USERS = [("dev", Role.DEVELOPER), ("rm", Role.RELEASE_MANAGER), ("ops", Role.OPS), ("qa", Role.QA),
         ("auditor", Role.AUDITOR)]
DEFAULT_PASSWORD = "rollgate-demo"


class Command(BaseCommand):
    help = "Create the demo service, environments and one user per role (dev, rm, ops, qa, auditor)."

    def add_arguments(self, parser):
        parser.add_argument("--password", help=f"password for every demo user (default: {DEFAULT_PASSWORD})")
        parser.add_argument("--random-password", action="store_true", help="generate one and print it")

    @transaction.atomic
    def handle(self, *args, password=None, random_password=False, **options):
        if random_password:
            password = secrets.token_urlsafe(12)
        password = password or DEFAULT_PASSWORD
        for role in Role.values:
            Group.objects.get_or_create(name=role)
        for name, position, protected, approvals in ENVIRONMENTS:
            env, created = Environment.objects.get_or_create(
                name=name, defaults={"namespace": f"agent-{name}", "position": position, "protected": protected,
                                     "required_approvals": approvals},
            )
            if not env.gray_phases.exists():
                for index, weight in enumerate([5, 10, 30, 50, 100]):
                    GrayPhase.objects.create(environment=env, position=index, weight=weight)
        AgentService.objects.get_or_create(
            name="agent-infer",
            defaults={"image_repository": "registry.example.com/agent/agent-core",
                      "description": "Inference agent (demo)", "source_repository": "git@example.com:agent/agent-core"},
        )
        users = get_user_model().objects
        for username, role in USERS:
            user, _ = users.get_or_create(username=username)
            user.set_password(password)
            user.save()
            user.groups.set([Group.objects.get(name=role)])
        self.stdout.write("Demo ready: service agent-infer; environments dev, test, staging, prod (protected).")
        self.stdout.write(f"Logins (password: {password}): " + ", ".join(f"{u} ({r})" for u, r in USERS))
