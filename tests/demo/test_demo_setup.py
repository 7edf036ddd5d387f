"""`manage.py demo_setup`: staging on the local target, the demo SLA policy, a buildable context, a private token."""
import stat

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from demo.setup import DEMO_POLICY
from releases.models import AgentService, AuditEvent, Environment
from routing import auth
from routing.models import AgentToken
from sla.models import SlaPolicyVersion
from sla.services import policy_effective


def test_demo_setup_makes_staging_the_local_demo_and_is_idempotent(db, tmp_path, capsys):
    call_command("seed_demo")
    call_command("demo_setup", var_dir=str(tmp_path))
    first = capsys.readouterr().out
    call_command("demo_setup", var_dir=str(tmp_path))
    assert "already set up" in capsys.readouterr().out

    staging = Environment.objects.get(name="staging")
    assert staging.deploy_target == "local" and staging.auto_rollback
    assert staging.target_settings["state_dir"] == str(tmp_path / "local-target")
    service = AgentService.objects.get(name="agent-infer")
    assert service.image_repository == "127.0.0.1:5000/demo/agent-infer"
    context = tmp_path / "demo" / "build" / "agent-infer"
    assert service.source_path == str(context)
    dockerfile = (context / "Dockerfile").read_text()
    assert "FROM scratch" in dockerfile and "CMD" in dockerfile
    assert (context / "demo_agent" / "server.py").is_file() and (context / "requirements.txt").is_file()

    policy = policy_effective(environment=staging).to_dict()
    assert all(policy[name] == value for name, value in DEMO_POLICY.items())
    assert SlaPolicyVersion.objects.filter(environment=staging).count() == 1, "saved once, not per run"
    assert AuditEvent.objects.filter(action="environment.update", actor_name="demo-setup").count() == 2
    prod = Environment.objects.get(name="prod")  # the demo plays prod too: same target, a gray step for qa
    assert prod.deploy_target == "local" and prod.gray_step_approvals == {"50": {"qa": 1}}
    # each environment's agents register with that environment's own agent token (tokens are per environment)
    assert staging.target_settings["agent_token_file"] == str(tmp_path / "demo" / "agent-token")
    assert prod.target_settings["agent_token_file"] == str(tmp_path / "demo" / "agent-token-prod")
    from deploy.drivers.local import target_for
    assert target_for(prod).extra_env == {"ROLLGATE_AGENT_TOKEN_FILE": str(tmp_path / "demo" / "agent-token-prod")}
    staging_token, prod_token = ((tmp_path / "demo" / name).read_text().strip()
                                 for name in ("agent-token", "agent-token-prod"))
    assert auth.agent_for_key(prod_token).environment == "prod"
    assert auth.agent_for_key(staging_token).environment == "staging"
    assert policy_effective(environment=prod).to_dict()["min_sample_size"] == DEMO_POLICY["min_sample_size"]
    assert (tmp_path / "demo" / "agent-token-prod").is_file()

    token_file = tmp_path / "demo" / "agent-token"
    key = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert key not in first, "the key is never printed"
    principal = auth.agent_for_key(key)
    assert principal.may_access("agent-infer", "staging") and not principal.may_access("agent-infer", "prod")
    prod_key = (tmp_path / "demo" / "agent-token-prod").read_text().strip()
    assert auth.agent_for_key(prod_key).may_access("agent-infer", "prod") and prod_key not in first
    assert AgentToken.objects.filter(revoked_at__isnull=True).count() == 2  # one per environment

    # A revoked key is replaced by a new one.
    auth.token_revoke(token_id=AgentToken.objects.get(environment__name="staging").pk)
    call_command("demo_setup", var_dir=str(tmp_path))
    assert token_file.read_text().strip() != key
    assert AgentToken.objects.filter(revoked_at__isnull=True).count() == 2


def test_demo_setup_before_seed_demo_says_what_to_run(db, tmp_path):
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("demo_setup", var_dir=str(tmp_path))
