"""Validation of protection (issue 15): required approvals may only name roles that can approve; a protected
environment needs at least one; approvals at gray steps name rungs of the ladder. Refused with 400 naming the
field, through the API and the environment page alike."""
import pytest
from django.test import Client

from releases.errors import InvalidInput
from releases.models import AuditEvent, Environment
from releases.services import Actor, environment_update
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["developer", "ops", "auditor"])
def test_required_approvals_naming_a_role_that_cannot_approve_is_400(environments, ops, role):
    response = client_for(ops).patch("/api/environments/prod/", {"required_approvals": {role: 2, "qa": 1}},
                                     format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert "required_approvals" in body["errors"]
    assert f"{role} cannot approve releases" in body["detail"] and "release_manager, qa" in body["detail"]
    assert Environment.objects.get(name="prod").required_approvals == {"release_manager": 1, "qa": 1}
    assert not AuditEvent.objects.filter(action="environment.update").exists()


def test_protected_environment_needs_at_least_one_required_approval(environments, ops):
    client = client_for(ops)
    emptied = client.patch("/api/environments/prod/", {"required_approvals": {}}, format="json")
    assert emptied.status_code == 400 and emptied.json()["errors"] == {
        "required_approvals": [emptied.json()["detail"]]}
    assert "protected environment needs at least one required approval" in emptied.json()["detail"]
    zeros = client.patch("/api/environments/prod/", {"required_approvals": {"qa": 0, "release_manager": 0}},
                         format="json")
    assert zeros.status_code == 400 and "required_approvals" in zeros.json()["errors"]
    # Protecting staging, which requires nobody, names the flag.
    flagged = client.patch("/api/environments/staging/", {"protected": True}, format="json")
    assert flagged.status_code == 400 and "protected" in flagged.json()["errors"]
    assert "set protected to false" in flagged.json()["detail"]
    # Both at once, or dropping the flag with the approvals, is fine.
    both = client.patch("/api/environments/staging/", {"protected": True, "required_approvals": {"qa": 3}},
                        format="json")
    assert both.status_code == 200 and both.json()["required_approvals"] == {"qa": 3}
    dropped = client.patch("/api/environments/prod/", {"protected": False, "required_approvals": {}}, format="json")
    assert dropped.status_code == 200 and dropped.json()["protected"] is False


def test_gray_step_approvals_name_rungs_of_the_ladder_and_approver_roles(environments, ops):
    client = client_for(ops)
    good = client.patch("/api/environments/prod/", {"gray_step_approvals": {"100": {"release_manager": 1},
                                                                             "50": {"qa": 2}}}, format="json")
    assert good.status_code == 200, good.content
    assert good.json()["gray_step_approvals"] == {"50": {"qa": 2}, "100": {"release_manager": 1}}
    off_ladder = client.patch("/api/environments/prod/", {"gray_step_approvals": {"40": {"qa": 1}}}, format="json")
    assert off_ladder.status_code == 400 and "gray_step_approvals" in off_ladder.json()["errors"]
    assert "10, 30, 50, 100 %" in off_ladder.json()["detail"]
    first_rung = client.patch("/api/environments/prod/", {"gray_step_approvals": {"5": {"qa": 1}}}, format="json")
    assert first_rung.status_code == 400 and "covered by the approvals before promotion" in first_rung.json()["detail"]
    wrong_role = client.patch("/api/environments/prod/", {"gray_step_approvals": {"30": {"developer": 1}}},
                              format="json")
    assert wrong_role.status_code == 400 and "developer cannot approve" in wrong_role.json()["detail"]
    assert Environment.objects.get(name="prod").gray_step_approvals == {"50": {"qa": 2}, "100": {"release_manager": 1}}


def test_service_refuses_the_same_mistakes_for_every_caller(environments, ops):
    with pytest.raises(InvalidInput) as refused:
        environment_update(actor=Actor.of(ops), name="prod", changes={"required_approvals": {"developer": 1}})
    assert refused.value.field == "required_approvals"
    with pytest.raises(InvalidInput) as refused:
        environment_update(actor=Actor.of(ops), name="test", changes={"protected": True})
    assert refused.value.field == "protected"


def test_environment_page_offers_only_approver_roles_and_shows_the_protection_error(environments, ops):
    client = Client()
    client.force_login(ops)
    page = client.get("/environments/staging/").content.decode()
    assert 'name="approvals_qa"' in page and 'name="approvals_release_manager"' in page
    assert 'name="approvals_developer"' not in page and 'name="approvals_ops"' not in page
    response = client.post("/environments/staging/", {"protected": "on", "auto_rollback": "on",
                                                      "freeze_windows": "[]", "gray_step_approvals": "{}"})
    assert response.status_code == 400
    assert "a protected environment needs at least one required approval" in response.content.decode()
    assert Environment.objects.get(name="staging").protected is False
