"""The deploy pages: the release page's history section with rollback buttons, and the values page for ops."""
import pytest
from django.test import Client

from deploy.models import DeployRevision, EnvironmentValues
from tests.deploy.conftest import NS, promote_and_deploy


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_release_page_history_section_rolls_back_to_a_chosen_revision(staging, make_release, rm, qa, auditor,
                                                                     cluster, stage_log):
    first = make_release("v1.0.0", "staging")
    promote_and_deploy(first, rm, stage_log)
    second = make_release("v1.1.0", "staging")
    promote_and_deploy(second, rm, stage_log, full=True)
    page = logged_in(rm).get(f"/releases/{second.pk}/").content.decode()
    assert f'hx-get="/deploy/releases/{second.pk}/history/"' in page

    section = logged_in(rm).get(f"/deploy/releases/{second.pk}/history/").content.decode()

    assert 'data-rollback="1"' in section and 'data-rollback="1" disabled' not in section
    assert 'data-rollback="2" disabled' in section and "this revision&#x27;s manifests are what runs now" in section
    assert "Roll agent-infer in staging back to revision 1 (v1.0.0)?" in section  # the confirmation
    auditor_view = logged_in(auditor).get(f"/deploy/releases/{second.pk}/history/").content.decode()
    assert 'data-rollback="1" disabled' in auditor_view and "only release_manager, ops may roll back" in auditor_view
    assert "Deploy history is hidden: only" in logged_in(qa).get(f"/deploy/releases/{second.pk}/history/").content.decode()

    response = logged_in(rm).post("/deploy/agent-infer/staging/revisions/1/rollback/",
                                  {"next": f"/releases/{second.pk}/"}, follow=True)

    assert "rollback to revision 1: queued" in response.content.decode()
    assert response.redirect_chain[-1][0] == f"/releases/{second.pk}/"
    latest = DeployRevision.objects.order_by("-number").first()
    assert (latest.number, latest.description, latest.actor_name) == (3, "rollback to 1", "rm")
    image = cluster.get("deployments", NS, "agent-infer")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":v1.0.0")
    refused = logged_in(qa).post("/deploy/agent-infer/staging/revisions/2/rollback/", follow=True)
    assert "rollback to revision 2 refused: only release_manager, ops may roll back" in refused.content.decode()


@pytest.mark.django_db
def test_ops_edit_environment_values_and_errors_name_the_key(environments, service, ops, auditor, dev):
    url = "/deploy/agent-infer/staging/values/"

    saved = logged_in(ops).post(url, {"layer": "environment", "text": "replicaCount: 3\n", "comment": "more"},
                                follow=True)

    assert "values saved" in saved.content.decode()
    assert EnvironmentValues.objects.get().number == 1
    assert "replicaCount: 3" in saved.content.decode() and 'id="merged-values"' in saved.content.decode()
    bad = logged_in(ops).post(url, {"layer": "environment", "text": "replicaCount: 3\nresources: {limits: {cpu: 2x}}\n"})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "Not saved: values-staging.yaml: resources.limits.cpu: must be a Kubernetes quantity" in page
    assert "cpu: 2x" in page  # the submitted text stays in the form to be fixed
    assert EnvironmentValues.objects.count() == 1
    read_only = logged_in(auditor).get(url).content.decode()
    assert 'id="read-only"' in read_only and "readonly" in read_only and "data-save" not in read_only
    assert logged_in(dev).get(url).status_code == 403
    assert logged_in(auditor).post(url, {"layer": "service", "text": "replicaCount: 9\n"}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_release_page_shows_the_rollout_its_status_and_what_the_target_said(staging, make_release, rm, auditor,
                                                                          cluster, stage_log):
    release = make_release("v1.0.0", "staging")
    assert promote_and_deploy(release, rm, stage_log) == "succeeded"

    section = logged_in(auditor).get(f"/releases/{release.pk}/pipeline/").content.decode()

    assert "Rollout to staging" in section and 'data-rollout-status="succeeded"' in section
    assert "rollout complete" in section and "applying agent-infer:v1.0.0" in section
