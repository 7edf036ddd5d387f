"""Server-rendered pages go through the same selectors, services and policy as the API."""
import pytest
from django.test import Client

from releases.choices import ReleaseStatus as S


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_need_a_login(environments):
    for path in ("/", "/approvals/", "/audit/", "/environments/", "/environments/prod/", "/releases/1/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), path


def test_login_form_logs_in_and_shows_the_fleet(environments, service, live_release, rm):
    client = Client()
    response = client.post("/login/", {"username": "rm", "password": "pw-rm"}, follow=True)
    page = response.content.decode()
    assert "agent-infer" in page and all(env in page for env in ("dev", "test", "staging", "prod"))
    assert f'<span class="dot live"></span><a href="/releases/{live_release.pk}/">v1.0.0</a>' in page


def test_wrong_password_says_so(environments, rm):
    page = Client().post("/login/", {"username": "rm", "password": "nope"}).content.decode()
    assert "Wrong username or password." in page


def test_logout_ends_the_session(environments, rm):
    client = logged_in(rm)
    assert client.post("/logout/").status_code == 302
    assert client.get("/")["Location"].startswith("/login/")


def test_users_without_a_role_are_told_so_on_every_page(environments, live_release, nobody):
    client = logged_in(nobody)
    for path in ("/", "/approvals/", "/audit/", "/environments/", f"/releases/{live_release.pk}/"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "You have no Rollgate role yet" in response.content.decode(), path


def test_qa_sees_promote_disabled_with_the_reason(live_release, make_release, qa):
    release = make_release("v1.1.0", "staging")
    page = logged_in(qa).get(f"/releases/{release.pk}/").content.decode()
    assert 'data-action="promote" disabled aria-describedby="why-promote"' in page
    assert '<small class="why" id="why-promote" data-why="promote">only release_manager may promote releases; ' \
           'you are qa</small>' in page


def test_promote_is_held_for_missing_approvals_with_the_reason(environments, make_release, rm):
    release = make_release("v1.0.0", "prod")
    page = logged_in(rm).get(f"/releases/{release.pk}/").content.decode()
    assert 'data-why="promote">waiting for approval from 1 qa, 1 release_manager</small>' in page
    assert '<span class="tag warn">missing 1</span>' in page


def test_promote_button_moves_the_release_and_refusals_are_shown(live_release, make_release, rm, qa):
    release = make_release("v1.1.0", "staging")
    response = logged_in(rm).post(f"/releases/{release.pk}/promote/", {"expected_weight": "0"}, follow=True)
    release.refresh_from_db()
    assert (release.status, release.gray_weight) == (S.GRAY, 5)
    assert "promote: done" in response.content.decode()
    response = logged_in(qa).post(f"/releases/{release.pk}/rollback/", follow=True)
    assert "roll back refused: only release_manager, ops may roll back releases" in response.content.decode()
    release.refresh_from_db()
    assert release.status == S.GRAY


def test_an_htmx_action_answers_with_the_release_body_and_its_outcome(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    client = logged_in(rm)
    client.post(f"/releases/{release.pk}/promote/", {"expected_weight": "0"})
    # a stale page (it saw 0 %) must not promote twice
    response = client.post(f"/releases/{release.pk}/promote/", {"expected_weight": "0"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200 and "<html" not in page
    assert "promote refused: release #%d is at 5 %%, not 0 %%" % release.pk in page
    release.refresh_from_db()
    assert release.gray_weight == 5


def test_reject_needs_a_comment(environments, make_release, qa):
    release = make_release("v1.0.0", "prod")
    page = logged_in(qa).post(f"/releases/{release.pk}/reject/", {"comment": "  "}, follow=True).content.decode()
    assert "reject refused: comment: a rejection needs a reason in the comment" in page
    page = logged_in(qa).post(f"/releases/{release.pk}/reject/", {"comment": "p95 too high"},
                              follow=True).content.decode()
    release.refresh_from_db()
    assert release.status == S.REJECTED
    assert "<q>p95 too high</q>" in page


def test_release_page_shows_ladder_approvals_and_timeline(environments, make_release, rm, qa):
    release = make_release("v1.0.0", "prod")
    logged_in(qa).post(f"/releases/{release.pk}/approve/", {"comment": "looks good"})
    page = logged_in(rm).get(f"/releases/{release.pk}/").content.decode()
    assert all(f"<li class=\"\">{w} %</li>" in page for w in (5, 10, 30, 50, 100))
    assert "<b>qa</b> <span class=\"muted\">(qa)</span> approved" in page and "<q>looks good</q>" in page
    for action in ("release.create", "pipeline.succeeded", "release.approve"):
        assert f"<td>{action}</td>" in page
    assert '<dialog id="confirm-action"' in page


def test_unknown_action_and_release_are_404(live_release, rm):
    client = logged_in(rm)
    assert client.post(f"/releases/{live_release.pk}/explode/").status_code == 404
    assert client.get("/releases/999999/").status_code == 404


def test_an_over_long_comment_from_the_page_is_refused_not_cut(live_release, make_release, rm):
    release = make_release("v1.1.0", "staging")
    response = logged_in(rm).post(f"/releases/{release.pk}/promote/", {"comment": "x" * 5000,
                                                                       "expected_weight": "0"}, follow=True)
    assert "comment: at most 4000 characters (it had 5000); nothing was changed" in response.content.decode()
    release.refresh_from_db()
    assert release.status == S.READY


def test_an_unknown_release_gets_a_plain_not_found_page(environments, rm):
    response = logged_in(rm).get("/releases/999999/")
    page = response.content.decode()
    assert response.status_code == 404 and "Not found" in page and "URLconf" not in page


@pytest.mark.django_db
def test_a_paused_ramp_does_not_offer_resume_as_the_obvious_next_step(make_release, live_release, rm):
    from releases.services import Actor, release_pause, release_promote

    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    page = logged_in(rm).get(f"/releases/{canary.pk}/").content.decode()
    assert 'class="btn traffic" data-action="promote"' in page  # in gray, promoting is the main action
    release_pause(actor=Actor.of(rm), release_id=canary.pk, comment="eval scores look worse")
    page = logged_in(rm).get(f"/releases/{canary.pk}/").content.decode()
    assert 'class="btn neutral" data-action="resume"' in page
    assert 'class="btn danger" data-action="rollback"' in page and 'class="btn traffic"' not in page
