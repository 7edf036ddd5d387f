"""Start a release from the browser (issue 15): developers and release managers fill service, environment, tag,
commit and branch; the conventions are checked as they type, and a refusal names the field and the rule."""
import pytest
from django.test import Client

from releases.models import AuditEvent, Release
from tests.conftest import sha

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_nav_offers_it_to_those_who_may_create_releases(environments, service, dev, rm, qa):
    assert 'data-link="release-new"' in browser(dev).get("/").content.decode()
    assert 'data-link="release-new"' in browser(rm).get("/").content.decode()
    assert 'data-link="release-new"' not in browser(qa).get("/").content.decode()
    assert browser(qa).get("/releases/new/").status_code == 403


@pytest.mark.parametrize("query,field,words", [
    ({"tag": "1.2.3"}, "tag", "fits no tag convention. Tags must look like: v3.2.1 (release)"),
    ({"tag": "v1.2.3-rc1", "environment": "prod"}, "tag", "it may be released to dev, staging, test, not prod"),
    ({"tag": "dev-latest", "environment": "staging"}, "tag", "may be released to dev, test, not staging"),
    ({"branch": "main", "environment": "staging"}, "branch", "branch &#x27;main&#x27; cannot release to staging"),
    ({"branch": "wip", "environment": "dev"}, "branch", "fits no branch convention"),
    ({"commit": "abc123"}, "commit", "full 40-character lowercase hex git commit sha"),
    ({"service": "nope"}, "service", "no service named &#x27;nope&#x27;; known services: agent-infer"),
])
def test_conventions_are_checked_as_you_type_naming_the_rule(environments, service, dev, query, field, words):
    partial = browser(dev).get("/releases/new/check/", query).content.decode()
    assert f'data-problem="{field}"' in partial and words in partial


def test_a_complete_form_that_fits_says_so_and_starts_the_release(environments, service, dev):
    commit = sha()
    values = {"service": "agent-infer", "environment": "staging", "tag": "v1.6.0-rc2", "commit": commit,
              "branch": "release/v1.6.0"}
    assert 'data-checks="ok"' in browser(dev).get("/releases/new/check/", values).content.decode()
    response = browser(dev).post("/releases/new/", values)
    release = Release.objects.get(version__tag="v1.6.0-rc2")
    assert response.status_code == 302 and response.url == f"/releases/{release.pk}/"
    assert (release.environment.name, release.version.commit_sha, release.version.branch) == ("staging", commit,
                                                                                              "release/v1.6.0")
    assert AuditEvent.objects.get(action="release.create", release=release).actor_name == "dev"
    # The same again is refused next to the tag, naming the open release; nothing new is created.
    again = browser(dev).post("/releases/new/", values)
    assert again.status_code == 400
    assert f"release #{release.pk} of agent-infer v1.6.0-rc2 to staging is already open" in again.content.decode()
    assert Release.objects.count() == 1


def test_a_refused_submit_keeps_the_values_and_names_the_field(environments, service, rm):
    response = browser(rm).post("/releases/new/", {"service": "agent-infer", "environment": "prod",
                                                   "tag": "v2.0.0-rc1", "commit": sha(), "branch": ""})
    page = response.content.decode()
    assert response.status_code == 400 and 'data-field-error="tag"' in page
    assert 'value="v2.0.0-rc1"' in page and not Release.objects.exists()
    missing = browser(rm).post("/releases/new/", {"service": "agent-infer"}).content.decode()
    assert 'data-field-error="environment"' in missing and 'data-field-error="commit"' in missing
