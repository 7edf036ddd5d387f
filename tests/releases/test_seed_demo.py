from django.core.management import call_command

from releases import policy
from releases.models import AgentService, Environment


def test_seed_demo_creates_service_environments_and_one_user_per_role(db, capsys):
    call_command("seed_demo", "--password", "s3cret-demo")
    call_command("seed_demo", "--password", "s3cret-demo")  # idempotent
    assert list(AgentService.objects.values_list("name", flat=True)) == ["agent-infer"]
    prod = Environment.objects.get(name="prod")
    assert prod.protected and prod.namespace == "agent-prod"
    assert prod.required_approvals == {"release_manager": 1, "qa": 1}
    assert list(prod.gray_phases.values_list("weight", flat=True)) == [5, 10, 30, 50, 100]
    from django.contrib.auth import authenticate

    from django.test import RequestFactory

    # Every way in goes through django-axes, which needs the request (its address) to count failures.
    rm = authenticate(RequestFactory().post("/login/"), username="rm", password="s3cret-demo")
    assert rm is not None and policy.roles_of(rm) == {"release_manager"}
    assert "s3cret-demo" in capsys.readouterr().out
