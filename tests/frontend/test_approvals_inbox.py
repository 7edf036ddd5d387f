"""The approvals inbox lists what the user's roles can still approve, and nothing they started or decided."""
import re

from django.test import Client

from releases.models import Release


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_inbox_lists_releases_waiting_for_the_users_role(environments, make_release, rm, rm2, qa):
    waiting = make_release("v1.0.0", "prod")
    mine = make_release("v1.0.1", "prod", by=rm)
    make_release("v1.0.2", "staging")  # staging needs no approvals
    page = logged_in(rm).get("/approvals/").content.decode()
    assert f'href="/releases/{waiting.pk}/">#{waiting.pk}</a>' in page
    assert f"#{mine.pk}</a>" not in page  # rm started it: someone else must approve
    assert "v1.0.2" not in page
    assert '<span id="inbox-count" class="count"' in page
    badge = logged_in(rm).get("/approvals/", {"badge": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert badge.startswith('<span id="inbox-count" class="count"') and ">1</span>" in badge

    logged_in(rm2).post(f"/releases/{waiting.pk}/approve/", {"comment": "ok"})
    page = logged_in(rm).get("/approvals/").content.decode()
    assert f"#{waiting.pk}</a>" not in page  # the release_manager approval is given; qa's is still missing
    page = logged_in(qa).get("/approvals/").content.decode()
    assert f"#{waiting.pk}</a>" in page and '<span class="tag warn">1 qa</span>' in page
    logged_in(qa).post(f"/releases/{waiting.pk}/approve/")
    page = logged_in(qa).get("/approvals/", HTTP_HX_REQUEST="true").content.decode()
    assert f"#{waiting.pk}</a>" not in page and f"#{mine.pk}</a>" in page and "<html" not in page
    assert "Nothing is waiting for you." in logged_in(rm).get("/approvals/").content.decode()


def test_roles_that_cannot_approve_get_the_reason(environments, dev):
    response = logged_in(dev).get("/approvals/")
    assert response.status_code == 403
    assert "only release_manager, qa may approve releases; you are developer" in response.content.decode()


def test_inbox_skips_failed_builds_lists_newest_first_and_pages(environments, make_release, rm, monkeypatch):
    from releases import selectors
    from releases.choices import ReleaseStatus as S

    monkeypatch.setattr(selectors, "INBOX_PAGE_SIZE", 2)
    failed = make_release("v0.9.0", "prod", status=S.PENDING)
    Release.objects.filter(pk=failed.pk).update(status=S.CI_FAILED)
    waiting = [make_release(f"v1.0.{n}", "prod") for n in range(3)]
    client = logged_in(rm)
    first = client.get("/approvals/").content.decode()
    assert f"#{waiting[2].pk}</a>" in first and f"#{waiting[1].pk}</a>" in first
    assert first.index(f"#{waiting[2].pk}</a>") < first.index(f"#{waiting[1].pk}</a>")
    older = re.search(r'href="\?(cursor=[^"]+)">older', first).group(1)
    second = client.get("/approvals/?" + older).content.decode()
    assert f"#{waiting[0].pk}</a>" in second and f"#{failed.pk}</a>" not in second and "older →" not in second
    badge = client.get("/approvals/", {"badge": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert ">3</span>" in badge
    assert client.get("/approvals/", {"cursor": "x"}).status_code == 400


def test_inbox_and_badge_cost_the_same_queries_with_many_waiting(environments, make_release, rm):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = logged_in(rm)
    make_release("v1.0.0", "prod")
    with CaptureQueriesContext(connection) as few:
        client.get("/approvals/")
    for n in range(8):
        make_release(f"v2.0.{n}", "prod")
    with CaptureQueriesContext(connection) as many:
        client.get("/approvals/")
    assert len(many) == len(few)
