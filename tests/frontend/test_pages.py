"""Server-rendered pages go through the same selectors, services and policy as the API."""
from django.test import Client

from releases.choices import ReleaseStatus as S


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login(environments):
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_login_form_logs_in_and_shows_the_fleet(environments, service, live_release, rm):
    client = Client()
    response = client.post("/login/", {"username": "rm", "password": "pw-rm"}, follow=True)
    page = response.content.decode()
    assert "agent-infer" in page and all(env in page for env in ("dev", "test", "staging", "prod"))
    assert "stable <b>v1.0.0</b>" in page


def test_qa_sees_promote_disabled_with_the_reason(live_release, make_release, qa):
    release = make_release("v1.1.0", "staging")
    page = logged_in(qa).get(f"/releases/{release.pk}/").content.decode()
    assert 'data-action="promote" disabled' in page
    assert "only release_manager may promote releases; you are qa" in page


def test_promote_button_moves_the_release_and_refusals_are_shown(live_release, make_release, rm, qa):
    release = make_release("v1.1.0", "staging")
    response = logged_in(rm).post(f"/releases/{release.pk}/promote/", {"expected_weight": "0"}, follow=True)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 5)
    assert "promote: done" in response.content.decode()
    response = logged_in(qa).post(f"/releases/{release.pk}/rollback/", follow=True)
    assert "rollback refused: only release_manager, ops may roll back releases" in response.content.decode()
    release.refresh_from_db()
    assert release.status == S.GRAY


def test_fleet_partial_filters_by_service(environments, service, live_release, rm):
    page = logged_in(rm).get("/", {"service": "nothing-like-this"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No services match" in page and "<html" not in page
